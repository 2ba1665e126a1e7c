"""e-prop on the recurrent LIF network: hand-computed dynamics and updates, the autograd identity of
symmetric e-prop, and the pairings the recurrent network refuses.

The worked example (exact rational arithmetic): 1 input, 2 recurrent LIF neurons, 1 readout,
T = 4, alpha = 9/10, kappa = 4/5, v_th = 1, gamma = 3/10, symmetric feedback, loss
E = 1/2 sum_t (y^t - y*^t)^2 on the whole readout sequence:

    W_in = [[6/5], [1/2]], W_rec = [[0, -1/5], [3/5, 0]], W_out = [[1/2, -1/2]], b_out = 0
    x = [1, 1/2, 1, 0], y* = [0, 1/2, 1/2, 1]

    t   v                        z       y
    1   [6/5, 1/2]               [1, 0]  1/2
    2   [17/25, 13/10]           [0, 1]  -1/10
    3   [403/250, 67/100]        [1, 0]  21/50
    4   [1127/2500, 1203/1000]   [0, 1]  -41/250

    E = 61603/62500; e-prop .grad: W_in = [[-3559751847/6250000000], [1917180717/2500000000]],
    W_rec = [[0, -16211319/125000000], [245638281/500000000, 0]],
    W_out = [[-51199/31250, -16081/6250]], b_out = -65802/15625
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from biobench import Network
from biobench_plugins.architectures.rsnn import (
    RecurrentLIF,
    RecurrentSpikingNetwork,
    RecurrentSynapses,
    biobench_pairing_unsupported,
)
from biobench_plugins.rules.eprop import Eprop, reverse_trace

TARGET = torch.tensor([0.0, 0.5, 0.5, 1.0], dtype=torch.float64).reshape(4, 1, 1)
X = torch.tensor([[1.0, 0.5, 1.0, 0.0]], dtype=torch.float64)
Y = torch.zeros(1, dtype=torch.long)


def close(a, b, atol=1e-12):
    """Equal within an absolute tolerance (no relative one)."""
    return torch.allclose(a, b, rtol=0.0, atol=atol)


def sequence_loss(potentials, labels):
    """1/2 sum_t (y^t - y*^t)^2 on the readout sequence (the readout returns the sequence)."""
    return 0.5 * ((potentials - TARGET) ** 2).sum()


def worked_example() -> Network:
    config = dict(
        input="rows", num_steps=4, tau_membrane=-1 / math.log(0.9), tau_readout=-1 / math.log(0.8),
        threshold=1.0, surrogate_height=0.3, readout="last",
    )
    mask = 1.0 - torch.eye(2, dtype=torch.float64)
    layers = [
        RecurrentSynapses("in", 1, 2, bias=False).double(),
        RecurrentSynapses("rec", 2, 2, bias=False, mask=mask).double(),
        RecurrentSynapses("out", 2, 1, bias=True).double(),
    ]
    values = [[[1.2], [0.5]], [[0.0, -0.2], [0.6, 0.0]], [[0.5, -0.5]]]
    with torch.no_grad():
        for layer, value in zip(layers, values, strict=True):
            layer.weight.copy_(torch.tensor(value, dtype=torch.float64))
        layers[2].bias.zero_()
    module = RecurrentLIF(*layers, config)
    module.readout = lambda potentials: potentials  # the example's loss reads the whole sequence
    return Network(module=module, layers=layers, architecture=RecurrentSpikingNetwork())


def bound(network, **options) -> Eprop:
    rule = Eprop(**options)
    rule.bind(network, torch.Generator().manual_seed(0))
    return rule


def grads(network):
    return {layer.layer_name: [p.grad.clone() for p in layer.parameters()] for layer in network.layers}


def test_the_network_follows_the_lif_dynamics_with_a_leaky_readout():
    network = worked_example()
    potentials, signals = network.forward_with_signals(X)
    inputs, recurrent, readout = signals
    assert inputs.time_major and inputs.membrane.shape == (4, 1, 2)
    v = torch.tensor([[6 / 5, 1 / 2], [17 / 25, 13 / 10], [403 / 250, 67 / 100], [1127 / 2500, 1203 / 1000]], dtype=torch.float64)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([1 / 2, -1 / 10, 21 / 50, -41 / 250], dtype=torch.float64)
    assert close(inputs.membrane[:, 0], v)
    assert torch.equal(inputs.post[:, 0], z) and torch.equal(recurrent.post, inputs.post)
    assert torch.equal(recurrent.pre[1:], inputs.post[:-1]) and not recurrent.pre[0].any()
    assert close(readout.post[:, 0, 0], y) and close(potentials[:, 0, 0], y)
    assert close(inputs.pre[:, 0, 0], X[0])


def test_symmetric_eprop_writes_the_hand_computed_update():
    network = worked_example()
    loss, _ = bound(network, feedback="symmetric").compute_update(X, Y, sequence_loss)
    g = grads(network)
    assert float(loss) == pytest.approx(61603 / 62500, abs=1e-14)
    assert close(g["in"][0], torch.tensor([[-3559751847 / 6250000000], [1917180717 / 2500000000]], dtype=torch.float64))
    expected_rec = torch.tensor([[0.0, -16211319 / 125000000], [245638281 / 500000000, 0.0]], dtype=torch.float64)
    assert close(g["rec"][0], expected_rec)
    assert close(g["out"][0], torch.tensor([[-51199 / 31250, -16081 / 6250]], dtype=torch.float64))
    assert close(g["out"][1], torch.tensor([-65802 / 15625], dtype=torch.float64))


def test_random_eprop_differs_from_symmetric_only_through_the_feedback_matrix():
    network = worked_example()
    symmetric = bound(network, feedback="symmetric")
    symmetric.compute_update(X, Y, sequence_loss)
    expected = grads(network)
    for p in network.plastic_parameters():
        p.grad = None
    random = bound(network, feedback="random")
    assert random.feedback_weights()["rec"].shape == (1, 2)
    with torch.no_grad():
        random.random_feedback.copy_(network.layers[2].weight)
    random.compute_update(X, Y, sequence_loss)
    got = grads(network)
    for name in expected:
        for a, b in zip(got[name], expected[name], strict=True):
            assert close(a, b)
    assert symmetric.feedback_weights() == {}


def test_synaptic_operations_count_spikes_times_existing_connections():
    from biobench.metrics.cost import OperationCounter

    network = worked_example()
    with OperationCounter(network.layers) as counter:
        network(X)
    counts = counter.per_example(1).value["per_layer"]
    # in: 4 steps x 1 input x 2 neurons, three non-zero inputs; rec: 4 steps x 2 connections (no
    # self-connections), spikes z^{t-1} at steps 2-4, one each, fan-out 1; out: 4 steps x 2,
    # one spike per step, fan-out 1
    assert counts["in"] == {"dense": 8.0, "effective_macs": 6.0, "effective_acs": 0.0}
    assert counts["rec"] == {"dense": 8.0, "effective_macs": 0.0, "effective_acs": 3.0}
    assert counts["out"] == {"dense": 8.0, "effective_macs": 0.0, "effective_acs": 4.0}


def test_reverse_trace_sums_the_future_with_decay():
    signal = torch.tensor([1.0, 2.0, 0.0, 4.0])
    assert torch.allclose(reverse_trace(signal, 0.5), torch.tensor([1 + 1 + 0 + 0.5, 2 + 0 + 1, 0 + 2, 4.0]))


def random_rsnn(seed=0, input_bias=False):
    architecture = RecurrentSpikingNetwork(hidden=24)
    network = architecture.build(64, 5, torch.Generator().manual_seed(seed))  # 8 steps of 8 inputs
    if input_bias:  # the capability allows biases on the neurons' synapses; rsnn has none
        old = network.layers[0]
        biased = RecurrentSynapses("in", old.in_features, old.out_features, bias=True)
        with torch.no_grad():
            biased.weight.copy_(old.weight)
            biased.bias.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(seed + 2))
        module = network.module
        module.input_layer = biased
        network = Network(module=module, layers=[biased, *network.layers[1:]], architecture=architecture)
    network.module.double()
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(6, 64, generator=generator, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (6,), generator=generator)
    return network, x, y


def detached_recurrence_gradient(network, x, y):
    """Autograd's gradient with z^{t-1} detached where it enters v^t (recurrent input and reset)."""
    module = network.module
    inputs = module.sequence(x)
    currents = module.input_layer(inputs)
    v = torch.zeros(x.shape[0], module.recurrent_layer.out_features, dtype=x.dtype)
    z = torch.zeros_like(v)
    spikes = []
    for t in range(inputs.shape[0]):
        previous = z.detach()
        v = module.alpha * v + currents[t] + module.recurrent_layer(previous) - module.threshold * previous
        z = (v > module.threshold).to(v.dtype) + (v - v.detach()) * module.pseudo_derivative(v).detach()
        spikes.append(z)
    drive = module.readout_layer(torch.stack(spikes))
    y_t, potentials = torch.zeros_like(drive[0]), []
    for t in range(drive.shape[0]):
        y_t = module.kappa * y_t + drive[t]
        potentials.append(y_t)
    loss = F.cross_entropy(module.readout(torch.stack(potentials)), y)
    return torch.autograd.grad(loss, network.plastic_parameters())


@pytest.mark.parametrize("input_bias", [False, True])
def test_symmetric_eprop_is_autograd_with_the_recurrent_dependence_cut(input_bias):
    network, x, y = random_rsnn(input_bias=input_bias)
    expected = detached_recurrence_gradient(network, x, y)
    bound(network, feedback="symmetric").compute_update(x, y, F.cross_entropy)
    for p, want in zip(network.plastic_parameters(), expected, strict=True):
        assert float(want.abs().max()) > 1e-4
        assert close(p.grad, want, atol=1e-12)
    rec = network.layers[1].weight.grad
    assert float(rec.diagonal().abs().max()) == 0.0  # no self-connections


def test_eprop_truncates_backprop_through_time():
    network, x, y = random_rsnn()
    bptt = dict(zip(map(id, network.plastic_parameters()), torch.autograd.grad(
        F.cross_entropy(network(x), y), network.plastic_parameters()), strict=True))
    bound(network, feedback="symmetric").compute_update(x, y, F.cross_entropy)
    readout = network.layers[2]
    for p in readout.parameters():  # the readout's update is its exact gradient
        assert close(p.grad, bptt[id(p)])
    for layer in network.layers[:2]:
        cosine = float(F.cosine_similarity(layer.weight.grad.reshape(-1), bptt[id(layer.weight)].reshape(-1), dim=0))
        assert 0.3 < cosine < 1 - 1e-6, (layer.layer_name, cosine)


def test_the_surrogate_is_the_triangular_pseudo_derivative():
    network, _, _ = random_rsnn()
    module = network.module
    v = torch.tensor([0.0, 0.3, 0.6, 0.9, 1.2, 1.5], dtype=torch.float64)
    # (0.3 / 0.6) max(0, 1 - |v - 0.6| / 0.6)
    assert close(module.pseudo_derivative(v), torch.tensor([0.0, 0.25, 0.5, 0.25, 0.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("rule", ["spike_error_propagation", "stdp", "hebbian", "node_perturbation"])
def test_rules_for_feed_forward_layer_chains_are_refused_with_a_reason(registry, rule):
    architecture = RecurrentSpikingNetwork()
    cls = registry.rules[rule].cls
    reason = biobench_pairing_unsupported(
        architecture=architecture, rule=cls, task=None, capabilities=registry.capabilities.descriptions()
    )
    assert reason is not None and rule in reason and "'rsnn'" in reason and "recurrent" in reason


def test_rules_that_need_no_signals_are_left_to_the_generic_check(registry):
    architecture = RecurrentSpikingNetwork()
    for rule in ("backprop", "weight_perturbation", "eprop", "feedback_alignment"):
        assert biobench_pairing_unsupported(
            architecture=architecture, rule=registry.rules[rule].cls, task=None, capabilities={}
        ) is None


@pytest.mark.slow
def test_backprop_through_time_and_eprop_learn_row_mnist_in_the_smoke_budget(tmp_path, data_dir):
    from helpers import run_context

    from biobench.training import runner

    context = run_context(tmp_path, data_dir)
    specs = runner.plan_grid(context.registry, ["mnist"], ["rsnn"], ["backprop", "eprop"], [0], "smoke")
    accuracy = {}
    for spec in specs:
        record = runner.execute(spec, context)
        assert record["status"] == "ok"
        accuracy[record["config"]["rule"]["name"]] = record["metrics"]["test_acc"]
    # 20 Adam steps on 28-step sequences; chance is 0.1 (sd 0.01 on 1,000 test images)
    assert accuracy["backprop"] > 0.25 and accuracy["eprop"] > 0.13, accuracy


def test_a_timed_input_is_shown_one_bin_per_step():
    architecture = RecurrentSpikingNetwork(hidden=5, input="pixels")
    architecture.input_steps = 4  # set by the harness from Task.input_steps
    network = architecture.build(12, 3, torch.Generator().manual_seed(0))
    x = torch.arange(24, dtype=torch.float32).reshape(2, 12) / 24
    _, (inputs, _, _) = network.forward_with_signals(x)
    assert network.layers[0].in_features == 3 and inputs.pre.shape == (4, 2, 3)
    assert torch.equal(inputs.pre[1, 0], x[0, 3:6])  # bin t = x[:, 3t:3t+3]


def test_rows_of_a_non_square_image_are_refused_with_a_reason(registry):
    cifar = registry.tasks["cifar10"].cls()
    backprop = registry.rules["backprop"].cls
    reason = biobench_pairing_unsupported(
        architecture=RecurrentSpikingNetwork(), rule=backprop, task=cifar, capabilities={}
    )
    assert reason is not None and "'rsnn'" in reason and "square" in reason and "3072" in reason
    assert biobench_pairing_unsupported(
        architecture=RecurrentSpikingNetwork(input="pixels"), rule=backprop, task=cifar, capabilities={}
    ) is None
    mnist = registry.tasks["mnist"].cls()
    assert biobench_pairing_unsupported(architecture=RecurrentSpikingNetwork(), rule=backprop, task=mnist, capabilities={}) is None
