"""The spiking architecture: LIF dynamics, rate coding, readout, hooks and its capabilities."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from torch import nn

from biobench_plugins.architectures.snn import LeakyLinear, SpikingNetwork, rate_encode


def single_layer(weight: list[list[float]], bias: list[float], beta: float = 0.5) -> LeakyLinear:
    """A LeakyLinear with hand-set weights, threshold 1, reset by subtraction."""
    w = torch.tensor(weight)
    layer = LeakyLinear("fc", w.shape[1], w.shape[0], neuron=snn.Leaky(beta=beta, threshold=1.0))
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_lif_layer_membrane_and_spikes_match_hand_computation():
    # U[t] = 0.5 U[t-1] + I[t] - S[t-1]; S[t] = U[t] > 1; I = 0.6 * input spike
    layer = single_layer([[0.6]], [0.0])
    spikes_in = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]).view(5, 1, 1)
    layer.start_recording()
    out = layer(spikes_in)
    signals = layer.stop_recording()
    # U: 0.6, 0.9, 1.05 (spike), 0.525 - 1 = -0.475, -0.2375
    expected_membrane = torch.tensor([0.6, 0.9, 1.05, -0.475, -0.2375])
    assert torch.allclose(signals.membrane.view(5), expected_membrane, atol=1e-6)
    assert out.view(5).tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert signals.time_major
    assert signals.pre.shape == (5, 1, 1) and signals.post.shape == (5, 1, 1)
    assert torch.allclose(signals.drive.view(5), 0.6 * spikes_in.view(5))
    assert torch.equal(signals.post, out)


def test_single_steps_reproduce_the_sequence_call():
    torch.manual_seed(0)
    layer = single_layer((torch.rand(3, 4) - 0.2).tolist(), [0.1, -0.2, 0.3], beta=0.9)
    spikes_in = (torch.rand(6, 2, 4) < 0.6).float()
    whole = layer(spikes_in)
    layer.reset_state()
    stepped = torch.stack([layer(spikes_in[t]) for t in range(6)])
    assert torch.equal(whole, stepped)
    assert whole.sum() > 0


def test_silent_step_uses_only_the_bias():
    layer = single_layer([[5.0, 5.0]], [0.4])
    layer.reset_state()
    with torch.no_grad():
        layer.start_recording()
        layer(torch.zeros(3, 2))
        signals = layer.stop_recording()
    assert torch.allclose(signals.drive, torch.full((3, 1), 0.4))


def test_drive_noise_is_added_at_every_step():
    layer = single_layer([[0.0]], [0.0], beta=1.0)
    layer.drive_noise = torch.tensor([[0.3], [2.0]])
    layer.start_recording()
    out = layer(torch.zeros(4, 2, 1))
    signals = layer.stop_recording()
    assert torch.allclose(signals.drive[:, 0, 0], torch.full((4,), 0.3))
    # beta = 1: 0.3, 0.6, 0.9, 1.2 -> first spike at the 4th step; 2.0 per step fires every step
    assert out[:, 0, 0].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert out[:, 1, 0].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_rate_encoding_is_deterministic_per_input_and_has_the_right_rate():
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]]).repeat(500, 1)
    a = rate_encode(x, 40, seed=7)
    b = rate_encode(x.clone(), 40, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, rate_encode(x, 40, seed=8))
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    rates = a.mean((0, 1))
    assert rates[0] == 0.0 and rates[3] == 1.0
    # 20,000 Bernoulli draws each: standard error below 0.0035
    assert abs(rates[1] - 0.25) < 0.015 and abs(rates[2] - 0.5) < 0.015
    # another batch (one changed pixel) gets other spikes
    y = x.clone()
    y[0, 0] = 0.1
    assert not torch.equal(rate_encode(y, 40, seed=7)[:, 1:], a[:, 1:])


def test_rate_encoding_passes_the_gradient_straight_through():
    x = torch.full((2, 3), 0.5, requires_grad=True)
    rate_encode(x, 7, seed=0).sum().backward()
    assert torch.equal(x.grad, torch.full((2, 3), 7.0))


def build(seed: int = 0, **options) -> object:
    return SpikingNetwork(**({"hidden": 16, "num_steps": 8} | options)).build(
        784, 10, torch.Generator().manual_seed(seed)
    )


def test_logits_are_output_spike_counts_and_repeat_exactly():
    network = build()
    x = torch.rand(4, 784)
    logits, signals = network.forward_with_signals(x)
    assert torch.equal(logits, signals[-1].post.sum(0))
    assert torch.equal(network(x), logits)
    assert [s.post.shape for s in signals] == [(8, 4, 16), (8, 4, 10)]
    assert torch.equal(signals[1].pre, signals[0].post)


def test_build_is_deterministic_given_the_generator():
    a, b, c = build(0), build(0), build(1)
    x = torch.rand(3, 784)
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert torch.equal(a.module.encode(x), b.module.encode(x))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
    assert not torch.equal(a.module.encode(x), c.module.encode(x))


def test_surrogate_bptt_matches_a_plain_snntorch_loop():
    """Same weights and input spikes: our network's loss and gradients equal a hand-written snntorch loop."""
    network = build(hidden=12, num_steps=6)
    x = torch.rand(5, 784)
    y = torch.arange(5)
    spikes = network.module.encode(x)
    loss = nn.functional.cross_entropy(network(x), y)
    loss.backward()

    fc1, fc2 = nn.Linear(784, 12), nn.Linear(12, 10)
    with torch.no_grad():
        for plain, ours in ((fc1, network.layers[0]), (fc2, network.layers[1])):
            plain.weight.copy_(ours.weight)
            plain.bias.copy_(ours.bias)
    grad = snn.surrogate.fast_sigmoid(slope=25.0)
    lif1, lif2 = snn.Leaky(beta=0.95, spike_grad=grad), snn.Leaky(beta=0.95, spike_grad=grad)
    mem1, mem2 = torch.zeros(5, 12), torch.zeros(5, 10)
    counts = torch.zeros(5, 10)
    for t in range(6):
        s1, mem1 = lif1(fc1(spikes[t]), mem1)
        s2, mem2 = lif2(fc2(s1), mem2)
        counts = counts + s2
    plain_loss = nn.functional.cross_entropy(counts, y)
    plain_loss.backward()
    assert torch.allclose(loss, plain_loss)
    assert torch.allclose(network.layers[0].weight.grad, fc1.weight.grad, atol=1e-6)
    assert torch.allclose(network.layers[1].weight.grad, fc2.weight.grad, atol=1e-6)
    assert fc1.weight.grad.abs().sum() > 0


def test_feedback_hook_replaces_the_input_gradient_at_every_step():
    network = build(hidden=12, num_steps=6)
    x, y = torch.rand(5, 784), torch.arange(5)
    nn.functional.cross_entropy(network(x), y).backward()
    reference = [p.grad.clone() for p in network.plastic_parameters()]
    for p in network.plastic_parameters():
        p.grad = None
    seen = []
    out_layer = network.layers[1]

    def transported(g):
        seen.append(tuple(g.shape))
        return g @ out_layer.weight.detach()

    out_layer.feedback = transported
    nn.functional.cross_entropy(network(x), y).backward()
    for p, g in zip(network.plastic_parameters(), reference, strict=True):
        assert torch.allclose(p.grad, g, atol=1e-6)
    assert seen == [(6, 5, 10)]
    for p in network.plastic_parameters():
        p.grad = None
    out_layer.feedback = lambda g: torch.zeros(*g.shape[:-1], 12)
    nn.functional.cross_entropy(network(x), y).backward()
    assert network.layers[0].weight.grad.abs().sum() == 0
    assert network.layers[1].weight.grad.abs().sum() > 0


def test_backprop_bias_against_the_reference_is_one():
    """Same batch -> same input spikes, so the rule's update and the reference gradient coincide."""
    from biobench.metrics.gradients import reference_gradient, rule_update
    from biobench_plugins.rules.backprop import Backprop
    from biobench_plugins.tasks.mnist import Mnist

    network = build(hidden=12, num_steps=6)
    rule = Backprop()
    rule.bind(network, torch.Generator().manual_seed(0))
    x, y = torch.rand(8, 784), torch.arange(8) % 10
    update = rule_update(network, rule, Mnist(), x, y)
    reference = reference_gradient(network, Mnist(), x, y)
    for name in update:
        assert torch.allclose(update[name], reference[name]), name
        assert update[name].abs().sum() > 0


def test_capabilities_leave_out_rate_and_sal_needs_stepping(registry):
    arch = SpikingNetwork()
    assert "rate" not in arch.capabilities
    assert {"differentiable", "feedback", "node_noise", "signals", "dense", "time", "stepping"} <= arch.capabilities
    hebbian = registry.get("rule", "hebbian").cls
    task = registry.get("task", "mnist").cls()
    reason = registry.unsupported_reason(arch, hebbian, task)
    assert reason is not None and "rate" in reason
    sal = registry.get("rule", "spike_alignment_learning").cls
    assert registry.unsupported_reason(arch, sal, task) is None
    mlp = registry.get("architecture", "mlp").cls()
    assert "stepping" in registry.unsupported_reason(mlp, sal, task)


def test_surrogate_is_named_in_the_config_and_unknown_names_fail():
    assert SpikingNetwork().config["surrogate"] == "fast_sigmoid"
    with pytest.raises(ValueError, match="surrogate=.nope. is not one of"):
        build(surrogate="nope")


def test_a_per_example_feedback_result_applies_at_every_step():
    """A rule written for rate networks returns (batch, in): the same input gradient at every step."""
    network = build(hidden=12, num_steps=6)
    x, y = torch.rand(5, 784), torch.arange(5)
    signal = torch.randn(5, 12, generator=torch.Generator().manual_seed(1))
    grads = []
    for feedback in (lambda g: signal, lambda g: signal.expand(6, 5, 12)):
        network.layers[1].feedback = feedback
        for p in network.plastic_parameters():
            p.grad = None
        nn.functional.cross_entropy(network(x), y).backward()
        grads.append(network.layers[0].weight.grad.clone())
    assert torch.equal(grads[0], grads[1])
    assert grads[0].abs().sum() > 0
