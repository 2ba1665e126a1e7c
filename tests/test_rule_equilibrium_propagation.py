"""Equilibrium propagation on the layered Hopfield network: hand-computed phases and updates, the
estimator bias, and agreement with backprop through the relaxation as beta -> 0.

The worked example (2-2-1 network, hard sigmoid, squared-error nudge, every state inside (0, 1))
was computed in exact rational arithmetic:

    x = [1, 1/2], W1 = [[1/2, -1/4], [1/4, 1/2]], b1 = [1/10, 0], W2 = [[1/2, 1/4]], b2 = 0, y = 1
    free phase, 4 steps from 0:      h = [21/32, 189/320],        o = 609/1280
    +1/2 nudge, 2 steps from there:  h = [4321/5120, 7009/10240], o = 13153/20480
    -1/2 nudge, 2 steps from there:  h = [2979/5120, 5667/10240], o = 2417/20480
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from biobench import Network
from biobench.metrics.gradients import reference_gradient
from biobench_plugins.architectures.hopfield import (
    HopfieldLayer,
    HopfieldNetwork,
    LayeredHopfieldNetwork,
)
from biobench_plugins.rules.equilibrium_propagation import EquilibriumPropagation

X = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
Y = torch.tensor([1.0], dtype=torch.float64)


def close(a, b, atol=1e-14):
    """Equal within an absolute tolerance (no relative one)."""
    return torch.allclose(a, b, rtol=0.0, atol=atol)


def squared_error(output, target):
    """1/2 (o - y)^2, averaged over the batch (the nudge is then beta (y - o))."""
    return 0.5 * ((output[:, 0] - target) ** 2).mean()


def worked_example(free_steps=4) -> Network:
    first = HopfieldLayer("fc1", 2, 2).double()
    second = HopfieldLayer("fc2", 2, 1).double()
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[0.5, -0.25], [0.25, 0.5]], dtype=torch.float64))
        first.bias.copy_(torch.tensor([0.1, 0.0], dtype=torch.float64))
        second.weight.copy_(torch.tensor([[0.5, 0.25]], dtype=torch.float64))
        second.bias.zero_()
    module = LayeredHopfieldNetwork([first, second], "hard_sigmoid", free_steps)
    return Network(module=module, layers=[first, second], architecture=HopfieldNetwork())


def rule_on(network, **options) -> EquilibriumPropagation:
    rule = EquilibriumPropagation(**options)
    rule.bind(network, torch.Generator().manual_seed(0))
    return rule


def grads(network):
    return [p.grad.clone() for p in network.plastic_parameters()]


def test_free_and_nudged_phases_follow_the_fixed_point_dynamics():
    network = worked_example()
    module = network.module
    free = module.relax(X, module.zero_state(X), 4)
    assert close(free[0], torch.tensor([[21 / 32, 189 / 320]], dtype=torch.float64), atol=1e-15)
    assert close(free[1], torch.tensor([[609 / 1280]], dtype=torch.float64), atol=1e-15)
    assert torch.equal(network(X), free[1])  # the forward pass is the free phase
    rule = rule_on(network, beta=0.5, nudged_steps=2)
    plus = module.relax(X, free, 2, rule.nudge(Y, squared_error, 0.5))
    minus = module.relax(X, free, 2, rule.nudge(Y, squared_error, -0.5))
    assert close(plus[0], torch.tensor([[4321 / 5120, 7009 / 10240]], dtype=torch.float64), atol=1e-15)
    assert close(plus[1], torch.tensor([[13153 / 20480]], dtype=torch.float64), atol=1e-15)
    assert close(minus[0], torch.tensor([[2979 / 5120, 5667 / 10240]], dtype=torch.float64), atol=1e-15)
    assert close(minus[1], torch.tensor([[2417 / 20480]], dtype=torch.float64), atol=1e-15)


def test_symmetric_estimator_writes_the_hand_computed_update():
    network = worked_example()
    loss, logits = rule_on(network, beta=0.5, nudged_steps=2, estimator="symmetric").compute_update(
        X, Y, squared_error
    )
    w1, b1, w2, b2 = grads(network)
    expected_w1 = torch.tensor([[-671 / 2560, -671 / 5120], [-671 / 5120, -671 / 10240]], dtype=torch.float64)
    assert close(w1, expected_w1, atol=1e-14)
    assert close(b1, torch.tensor([-671 / 2560, -671 / 5120], dtype=torch.float64), atol=1e-14)
    expected_w2 = torch.tensor([[-4963387 / 10485760, -39246119 / 104857600]], dtype=torch.float64)
    assert close(w2, expected_w2, atol=1e-14)
    assert close(b2, torch.tensor([-671 / 1280], dtype=torch.float64), atol=1e-14)
    assert float(logits) == pytest.approx(609 / 1280)
    assert float(loss) == pytest.approx(0.5 * (609 / 1280 - 1) ** 2)


def test_one_sided_estimator_writes_the_hand_computed_update():
    network = worked_example()
    rule_on(network, beta=0.5, nudged_steps=2, estimator="one_sided").compute_update(X, Y, squared_error)
    w1, b1, w2, b2 = grads(network)
    expected_w1 = torch.tensor([[-961 / 2560, -961 / 5120], [-961 / 5120, -961 / 10240]], dtype=torch.float64)
    assert close(w1, expected_w1, atol=1e-14)
    assert close(b1, torch.tensor([-961 / 2560, -961 / 5120], dtype=torch.float64), atol=1e-14)
    expected_w2 = torch.tensor([[-24094273 / 52428800, -6651533 / 20971520]], dtype=torch.float64)
    assert close(w2, expected_w2, atol=1e-14)
    assert close(b2, torch.tensor([-3409 / 10240], dtype=torch.float64), atol=1e-14)


def test_random_sign_is_the_one_sided_estimator_with_the_drawn_sign():
    # one-sided with +beta: the hand-computed values above; with -beta, from the state table:
    # grad = (dPhi(s^-) - dPhi(s^0)) / beta, dPhi/dW1 = h x^T, dPhi/db1 = h, dPhi/dW2 = o h^T, dPhi/db2 = o
    plus_b2, minus_b2 = -3409 / 10240, 2 * (2417 / 20480 - 609 / 1280)
    minus_w2 = [
        2 * (2417 / 20480 * 2979 / 5120 - 609 / 1280 * 21 / 32),
        2 * (2417 / 20480 * 5667 / 10240 - 609 / 1280 * 189 / 320),
    ]
    network = worked_example()
    rule = rule_on(network, beta=0.5, nudged_steps=2, estimator="random_sign")
    replay = torch.Generator()
    replay.set_state(rule.sign_generator.get_state())
    seen = set()
    for _ in range(8):
        positive = int(torch.randint(0, 2, (1,), generator=replay)) == 1
        seen.add(positive)
        for p in network.plastic_parameters():
            p.grad = None
        rule.compute_update(X, Y, squared_error)
        w1, b1, w2, b2 = grads(network)
        if positive:
            assert float(b2) == pytest.approx(plus_b2, abs=1e-14)
            assert float(b1[0]) == pytest.approx(-961 / 2560, abs=1e-14)
        else:
            assert float(b2) == pytest.approx(minus_b2, abs=1e-14)
            assert float(b1[0]) == pytest.approx(2 * (2979 / 5120 - 21 / 32), abs=1e-14)
            assert close(w2, torch.tensor([minus_w2], dtype=torch.float64), atol=1e-14)
    assert seen == {True, False}


def exact_fixed_point_estimates(beta):
    """Both estimators with every phase relaxed to convergence (200 steps, the linear example)."""
    out = {}
    for estimator in ("one_sided", "symmetric"):
        network = worked_example(free_steps=200)
        rule_on(network, beta=beta, nudged_steps=200, estimator=estimator).compute_update(X, Y, squared_error)
        out[estimator] = grads(network)
    return out


def test_symmetric_nudging_reduces_the_estimator_bias():
    # dL/dW2 at the free fixed point h* = [65/88, 139/220], o* = 29/55 (implicit differentiation)
    true_w2 = torch.tensor([[-22932 / 33275, -17472 / 33275]], dtype=torch.float64)
    estimates = exact_fixed_point_estimates(0.1)
    one_sided, symmetric = estimates["one_sided"][2], estimates["symmetric"][2]
    # values at the exact fixed points of each phase (rational arithmetic)
    assert close(one_sided, torch.tensor([[-0.6197, -0.4674]], dtype=torch.float64), atol=1e-4)
    assert close(symmetric, torch.tensor([[-0.6969, -0.5328]], dtype=torch.float64), atol=1e-4)
    assert (symmetric - true_w2).norm() < 0.2 * (one_sided - true_w2).norm()


def test_the_update_matches_backprop_through_the_relaxation_as_beta_vanishes():
    architecture = HopfieldNetwork(hidden=[4], activation="sigmoid", free_steps=300)
    network = architecture.build(5, 3, torch.Generator().manual_seed(1))
    network.module.double()
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(6, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=generator)

    class Task:
        def loss(self, logits, labels):
            return F.cross_entropy(logits, labels)

    reference = reference_gradient(network, Task(), x, y)
    rule = rule_on(network, beta=1e-3, nudged_steps=300, estimator="symmetric")
    rule.compute_update(x, y, F.cross_entropy)
    for layer in network.layers:
        update = torch.cat([p.grad.reshape(-1) for p in layer.parameters()])
        relative = float((update - reference[layer.layer_name]).norm() / reference[layer.layer_name].norm())
        assert relative < 1e-3, (layer.layer_name, relative)


def test_the_architecture_records_the_relaxed_state():
    network = worked_example()
    logits, signals = network.forward_with_signals(X)
    first, second = signals
    assert torch.equal(first.pre, X) and torch.equal(second.post, logits)
    assert close(first.post, torch.tensor([[21 / 32, 189 / 320]], dtype=torch.float64))
    assert close(second.pre, first.post)
    assert close(first.drive, torch.tensor([[19 / 40, 1 / 2]], dtype=torch.float64))  # bottom-up only
    assert not first.time_major


def test_both_directions_of_the_synapses_count_as_synaptic_operations():
    from biobench.metrics.cost import OperationCounter

    network = worked_example()  # 2-2-1, 4 free steps, one example
    with OperationCounter(network.layers) as counter:
        network(X)
    counts = counter.per_example(1).value["per_layer"]
    # fc1: the input drive W1 x once per relaxation (2 x 2); fc2: bottom-up W2 h and top-down
    # W2^T o at each of the 4 steps (2 x 1 each)
    assert counts["fc1"]["dense"] == 4 and counts["fc2"]["dense"] == 16
    # effective: only non-zero inputs count. Steps start from (h, o) = (0, 0), (h1, 0), (h2, o2),
    # (h3, o3): bottom-up 2 inputs x fan-out 1 at steps 2-4 (6), top-down 1 input x fan-out 2 at
    # steps 3-4 (4)
    assert counts["fc2"]["effective_macs"] == 10 and counts["fc1"]["effective_macs"] == 4


@pytest.mark.slow
def test_equilibrium_propagation_learns_mnist_in_the_smoke_budget(tmp_path, data_dir):
    from helpers import run_context

    from biobench.training import runner

    context = run_context(tmp_path, data_dir)
    (spec,) = runner.plan_grid(context.registry, ["mnist"], ["hopfield"], ["equilibrium_propagation"], [0], "smoke")
    record = runner.execute(spec, context)
    assert record["status"] == "ok"
    assert record["metrics"]["test_acc"] > 0.6  # 20 Adam steps; chance is 0.1
