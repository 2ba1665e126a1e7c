"""Diehl & Cook (2015)'s competitive spiking network and its STDP rule: equations on hand-built cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from biobench_plugins.architectures.competitive_snn import (
    E_EXC,
    TAU_E,
    TAU_GE,
    V_REST_E,
    CompetitiveSpikingNetwork,
)
from biobench_plugins.rules.stdp_competitive import (
    StdpCompetitive,
    diehl_cook_stdp,
    nearest_spike_trace,
)


def train(steps: int, *times: int) -> torch.Tensor:
    """A (steps, 1, 1) spike train with spikes at ``times``."""
    s = torch.zeros(steps, 1, 1)
    for t in times:
        s[t] = 1.0
    return s


def test_nearest_spike_trace_resets_to_one():
    trace = nearest_spike_trace(train(5, 0, 1, 3), 0.5)[:, 0, 0]
    torch.testing.assert_close(trace, torch.tensor([1.0, 1.0, 0.5, 1.0, 0.5]))


def test_diehl_cook_stdp_by_hand():
    """dt = 0.5 ms: post at 0 ms, pre at 5 ms, post at 10 ms.

    0 ms (post): post2 before it is 0, no change. 5 ms (pre): -1e-4 * post1 = -1e-4 e^(-5/20).
    10 ms (post): +1e-2 * pre * post2_before = 1e-2 e^(-5/20) e^(-10/40). Net +5.98744e-3.
    """
    pre, post = train(21, 10), train(21, 0, 20)
    change = diehl_cook_stdp(pre, post, 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0)
    expected = -1e-4 * math.exp(-5 / 20) + 1e-2 * math.exp(-5 / 20) * math.exp(-10 / 40)
    assert change.shape == (1, 1)
    assert change.item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(5.98744e-3, rel=1e-5)
    # a neuron's first spike never potentiates, whatever the pre-synaptic activity
    assert diehl_cook_stdp(train(5, 0, 1, 2, 3), train(5, 4), 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0).item() == 0.0
    # a pre spike in the same step as a post spike counts as causal (x_pre = 1); it depresses by
    # post1 as it was before that post spike (the earlier one, 1 ms ago)
    same = diehl_cook_stdp(train(3, 2), train(3, 0, 2), 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0).item()
    assert same == pytest.approx(1e-2 * 1.0 * math.exp(-1.0 / 40) - 1e-4 * math.exp(-1.0 / 20), rel=1e-5)


def test_stdp_sums_over_the_batch_and_keeps_the_shape():
    generator = torch.Generator().manual_seed(0)
    pre = (torch.rand(30, 3, 4, generator=generator) < 0.2).float()
    post = (torch.rand(30, 3, 2, generator=generator) < 0.1).float()
    total = diehl_cook_stdp(pre, post, 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0)
    parts = sum(diehl_cook_stdp(pre[:, b : b + 1], post[:, b : b + 1], 0.5, 1e-4, 1e-2, 20.0, 20.0, 40.0) for b in range(3))
    assert total.shape == (2, 4)
    torch.testing.assert_close(total, parts)


def _network(neurons=2, **options):
    arch = CompetitiveSpikingNetwork(neurons=neurons, **options)
    return arch.build(3, 2, torch.Generator().manual_seed(0))


def test_scores_are_the_mean_counts_of_each_class_neurons():
    network = _network(neurons=4)
    network.module.assignments.copy_(torch.tensor([0, 0, 1, -1]))
    scores = network.module.scores(torch.tensor([[2.0, 4.0, 1.0, 5.0]]))
    torch.testing.assert_close(scores, torch.tensor([[3.0, 1.0]]))


def test_first_spike_time_of_one_neuron_follows_the_conductance_equations():
    """One always-firing input (rate 2000 Hz at dt 0.5 ms) through weight w = 1 into one neuron.

    Independent recurrence: v += dt/100 ((-65 - v) + g (0 - v)); g *= e^(-dt/1); g += w after each
    step's threshold; spike when v > -52 mV (theta = 20 mV at the start).
    """
    network = _network(neurons=1, max_rate_hz=2000.0, presentation_ms=20.0, min_spikes=0)
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
    counts, trains = network.module.present(torch.tensor([[1.0, 0.0, 0.0]]), 2000.0, adapt=False, record=True)
    v, g, first = V_REST_E, 0.0, None
    for step in range(40):
        v = v + 0.5 / TAU_E * ((V_REST_E - v) + g * (E_EXC - v))
        g *= math.exp(-0.5 / TAU_GE)
        if v > -52.0:
            first = step
            break
        g += 1.0
    spikes = trains[2][:, 0, 0]
    assert first is not None and int(torch.nonzero(spikes)[0]) == first
    assert trains[0][:, 0, 0].sum() == 40 and trains[0][:, 0, 1:].sum() == 0  # the input fired every step
    assert counts.sum() == spikes.sum()


def test_lateral_inhibition_silences_the_other_neuron():
    x = torch.tensor([[1.0, 1.0, 1.0]])
    counts = {}
    for inhibition in (17.0, 0.0):
        network = _network(neurons=2, inhibitory_to_excitatory=inhibition, min_spikes=0)
        with torch.no_grad():
            network.layers[0].weight.copy_(torch.tensor([[3.0, 3.0, 3.0], [2.7, 2.7, 2.7]]))
        counts[inhibition], _ = network.module.present(x, 63.75, adapt=False, record=False)
    assert counts[0.0][0, 1] > 5  # without inhibition the weaker neuron fires too
    assert counts[17.0][0, 0] > counts[17.0][0, 1]
    assert counts[17.0][0, 1] < 0.5 * counts[0.0][0, 1]


def test_a_silent_image_is_presented_again_brighter():
    network = _network(neurons=1, min_spikes=1, max_presentations=3)
    with torch.no_grad():
        network.layers[0].weight.zero_()
    calls = []
    present = network.module.present

    def counting(x, rate, adapt, record, presentation=0):
        calls.append(rate)
        return present(x, rate, adapt, record, presentation)

    network.module.present = counting
    network.module.respond(torch.tensor([[0.5, 0.5, 0.5]]), adapt=False, record=False)
    assert calls == [63.75, 63.75 + 31.875, 63.75 + 2 * 31.875]


def test_rule_normalises_updates_thresholds_and_assigns_classes():
    network = _network(neurons=3)
    rule = StdpCompetitive(weight_sum=1.5)
    rule.bind(network, torch.Generator().manual_seed(0))
    torch.testing.assert_close(network.layers[0].weight.sum(1), torch.full((3,), 1.5))
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[0.1, 0.3, 0.6], [1.4, 0.1, 0.2], [0.5, 0.5, 0.5]]))
    rule.pending_responses.copy_(torch.tensor([[2.0, 0.0, 1.0], [1.0, 3.0, 0.0]]))
    rule.pending_examples.copy_(torch.tensor([1.0, 2.0]))
    rule.pending_spikes.copy_(torch.tensor([3.0, 3.0, 1.0]))
    theta = network.module.theta.clone()
    rule.after_step()
    torch.testing.assert_close(network.layers[0].weight[0], torch.tensor([0.15, 0.45, 0.9]))
    torch.testing.assert_close(network.layers[0].weight.sum(1), torch.full((3,), 1.5))
    # mean responses per class: neuron 0: [2, 0.5] -> 0; neuron 1: [0, 1.5] -> 1; neuron 2: [1, 0] -> 0
    assert network.module.assignments.tolist() == [0, 1, 0]
    decay = math.exp(-3 * 500 / 1e7)
    torch.testing.assert_close(network.module.theta, theta * decay + 0.05 * torch.tensor([3.0, 3.0, 1.0]))


def test_rule_update_leaves_the_network_as_it_was_and_writes_the_stdp_change():
    network = _network(neurons=4, presentation_ms=30.0)
    rule = StdpCompetitive()
    rule.bind(network, torch.Generator().manual_seed(0))
    before = network.layers[0].weight.detach().clone(), network.module.theta.clone()
    x = torch.rand(2, 3, generator=torch.Generator().manual_seed(1))
    loss, logits = rule.compute_update(x, torch.tensor([0, 1]), F.cross_entropy)
    assert logits.shape == (2, 2) and torch.isfinite(loss)
    torch.testing.assert_close(network.layers[0].weight.detach(), before[0])
    torch.testing.assert_close(network.module.theta, before[1])
    assert network.layers[0].weight.grad is not None
    assert rule.pending_examples.tolist() == [1.0, 1.0]


def test_pairings_of_the_competitive_network(registry):
    task = registry.get("task", "mnist").cls()
    arch = CompetitiveSpikingNetwork()
    assert registry.unsupported_reason(arch, StdpCompetitive, task) is None
    for name in ("backprop", "stdp", "spiking_error_backprop", "hebbian", "krotov_hopfield"):
        reason = registry.unsupported_reason(arch, registry.get("rule", name).cls, task)
        assert reason is not None and name in reason, name
    for name in ("snn", "mlp"):
        reason = registry.unsupported_reason(registry.get("architecture", name).cls(), StdpCompetitive, task)
        assert reason is not None and "assigned_readout" in reason
    # a rule that needs nothing of the architecture still cannot assign neurons to classes
    reason = registry.unsupported_reason(arch, registry.get("rule", "weight_perturbation").cls, task)
    assert reason is not None and "every logit stays 0" in reason and "assigned_readout" in reason


@pytest.mark.slow
def test_competitive_stdp_beats_chance_on_the_smoke_budget(tmp_path, data_dir):
    """25 neurons, 200 training images of 100 ms, classes assigned by response: far above chance (0.1)."""
    from helpers import run_context

    from biobench.training import runner

    spec = runner.RunSpec("mnist", "snn-competitive", "stdp_competitive", 0, "smoke")
    record = runner.execute(spec, run_context(tmp_path, data_dir))
    assert record["status"] == "ok", record.get("reason")
    assert record["metrics"]["test_acc"] > 0.25
    assert record["config"]["run"]["batch_size"] == 20 and record["data"]["train_examples"] == 200
