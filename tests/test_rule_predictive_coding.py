"""Predictive coding: hand-computed inference and update, its relation to backprop, and the layer chain.

The worked example (exact rational arithmetic): a 2-2-1 MLP, ReLU hidden units (all drives
positive), identity output, squared-error output energy with the output clamped to y = 1,
step size 1/10, value nodes initialised by the feed-forward pass.

    x0 = [1, 1/2], W1 = [[1/2, -1/4], [1/4, 1/2]], b1 = [1/10, 0], W2 = [[1/2, 1/4]], b2 = 0
    feed-forward: x1 = mu1 = [19/40, 1/2], mu2 = 29/80, eps2 = 51/80
    step 1: dF/dx1 = [-51/160, -51/320]      -> x1 = [811/1600, 1651/3200]
    step 2: dF/dx1 = [-7089/25600, -7089/51200] -> x1 = [136849/256000, 271249/512000]
    after step 2: eps1 = [15249/256000, 15249/512000], eps2 = 245871/409600
    .grad: W1 = -eps1 x0^T, b1 = -eps1, W2 = -eps2 x1^T, b2 = -eps2
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from biobench_plugins.architectures.kan import KAN
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.predictive_coding import PredictiveCoding

X = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
Y = torch.tensor([1])


def close(a, b, atol=1e-14):
    """Equal within an absolute tolerance (no relative one)."""
    return torch.allclose(a, b, rtol=0.0, atol=atol)


def loss_unused(output, target):
    """The task loss (reported; the squared-error output energy does not use it)."""
    return 0.5 * ((output[:, 0] - target) ** 2).mean()


def worked_example():
    network = MLP(hidden=[2], activation="relu").build(2, 1, torch.Generator().manual_seed(0))
    network.module.double()
    first, second = network.layers
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[0.5, -0.25], [0.25, 0.5]], dtype=torch.float64))
        first.bias.copy_(torch.tensor([0.1, 0.0], dtype=torch.float64))
        second.weight.copy_(torch.tensor([[0.5, 0.25]], dtype=torch.float64))
        second.bias.zero_()
    return network


def bound(network, **options) -> PredictiveCoding:
    rule = PredictiveCoding(**options)
    rule.bind(network, torch.Generator().manual_seed(0))
    return rule


def grads(network):
    return [p.grad.clone() for p in network.plastic_parameters()]


def test_inference_moves_the_value_node_down_the_energy_gradient():
    network = worked_example()
    for steps, expected in [
        (0, [19 / 40, 1 / 2]),
        (1, [811 / 1600, 1651 / 3200]),
        (2, [136849 / 256000, 271249 / 512000]),
    ]:
        rule = bound(network, output_energy="squared_error", inference_steps=steps, step_size=0.1)
        (value,), logits = rule.relax(X, Y, loss_unused)
        assert close(value, torch.tensor([expected], dtype=torch.float64))
        assert float(logits) == pytest.approx(29 / 80, abs=1e-15)  # the feed-forward prediction


def test_update_is_the_hand_computed_local_error_times_activity():
    network = worked_example()
    loss, logits = bound(network, output_energy="squared_error", inference_steps=2, step_size=0.1).compute_update(
        X, Y, loss_unused
    )
    w1, b1, w2, b2 = grads(network)
    eps1 = torch.tensor([15249 / 256000, 15249 / 512000], dtype=torch.float64)
    eps2 = 245871 / 409600
    x1 = torch.tensor([136849 / 256000, 271249 / 512000], dtype=torch.float64)
    assert close(w1, -eps1[:, None] * X)
    assert close(b1, -eps1)
    assert close(w2, -eps2 * x1[None, :])
    assert close(b2, torch.tensor([-eps2], dtype=torch.float64))
    assert float(loss) == pytest.approx(0.5 * (29 / 80 - 1) ** 2, abs=1e-15)


def test_momentum_accumulates_the_previous_energy_gradients():
    network = worked_example()
    rule = bound(network, output_energy="squared_error", inference_steps=2, step_size=0.1, momentum=0.5)
    (value,), _ = rule.relax(X, Y, loss_unused)
    # x <- x - 0.1 (g1 + 0.5 g0): the first step is the plain one, g1 is taken after it
    g0 = torch.tensor([-51 / 160, -51 / 320], dtype=torch.float64)
    g1 = torch.tensor([-7089 / 25600, -7089 / 51200], dtype=torch.float64)
    after_one = torch.tensor([811 / 1600, 1651 / 3200], dtype=torch.float64)
    assert close(value[0], after_one - 0.1 * (g1 + 0.5 * g0))


def random_mlp(hidden=(8, 6), seed=0):
    network = MLP(hidden=list(hidden), activation="tanh").build(12, 4, torch.Generator().manual_seed(seed))
    network.module.double()
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(5, 12, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (5,), generator=generator)
    return network, x, y


def backprop(network, x, y, loss_fn):
    for p in network.plastic_parameters():
        p.grad = None
    loss_fn(network(x), y).backward()
    out = grads(network)
    for p in network.plastic_parameters():
        p.grad = None
    return out


def test_one_step_from_the_feed_forward_pass_sends_step_size_times_backprop_delta_one_layer_down():
    network, x, y = random_mlp()
    rule = bound(network, inference_steps=1, step_size=0.1)
    values, _ = rule.relax(x, y, F.cross_entropy)
    with torch.no_grad():
        first = network.layers[0](x)
    hidden = network.layers[1](first.detach().requires_grad_(True))
    hidden_leaf = hidden.detach().requires_grad_(True)
    (delta,) = torch.autograd.grad(F.cross_entropy(network.layers[2](hidden_leaf), y) * len(y), hidden_leaf)
    assert close(values[0], first)  # the lower hidden error is still 0
    assert close(values[1] - hidden.detach(), -0.1 * delta)  # eps_{L-1} = step * (-dl/dh_{L-1})


def test_with_a_small_output_error_the_equilibrium_update_is_backprop():
    network, x, y = random_mlp()

    def small_loss(output, target):
        return 1e-3 * F.cross_entropy(output, target)

    reference = backprop(network, x, y, small_loss)
    bound(network, inference_steps=200, step_size=0.1).compute_update(x, y, small_loss)
    for got, want in zip(grads(network), reference, strict=True):
        cosine = float(F.cosine_similarity(got.reshape(-1), want.reshape(-1), dim=0))
        assert cosine > 0.9999
        assert float(got.norm() / want.norm()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("build", ["mlp", "kan", "kan-rescaled-input"])
def test_without_inference_only_the_output_layer_learns_exactly(build):
    if build == "mlp":
        network, x, y = random_mlp()
    else:  # the rescaled input reaches the first layer through architecture.chain_input
        options = {"input_range": [-1.0, 1.0]} if build == "kan-rescaled-input" else {}
        network = KAN(hidden=[3], **options).build(4, 3, torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(1)
        x = torch.rand(5, 4, generator=generator)
        y = torch.randint(0, 3, (5,), generator=generator)
    reference = dict(zip(map(id, network.plastic_parameters()), backprop(network, x, y, F.cross_entropy), strict=True))
    bound(network, inference_steps=0).compute_update(x, y, F.cross_entropy)
    for layer in network.layers[:-1]:
        for p in layer.parameters():
            assert p.grad is None or float(p.grad.abs().max()) == 0.0
    for p in network.layers[-1].parameters():
        assert torch.allclose(p.grad, reference[id(p)], rtol=0.0, atol=1e-6)
        assert float(p.grad.abs().max()) > 1e-3


def test_the_layer_chain_is_declared_by_the_feed_forward_architectures_only(registry):
    chains = {name for name, entry in registry.architectures.items() if "layer_chain" in entry.cls.capabilities}
    assert {"mlp", "mlp-sigmoid", "kan"} <= chains
    assert not chains & {"snn", "rsnn", "hopfield"}


def test_the_harness_can_count_the_operations_of_an_update():
    from biobench.metrics.cost import matmul_macs

    network, x, y = random_mlp()
    rule = bound(network, inference_steps=3)
    macs = matmul_macs(lambda: rule.compute_update(x, y, F.cross_entropy))
    feed_forward = 5 * (12 * 8 + 8 * 6 + 6 * 4)  # 5 examples through 12-8-6-4
    assert macs > 3 * feed_forward  # inference steps and the local updates come on top
