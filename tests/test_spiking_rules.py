"""Update equations of the spiking rules (STDP, spiking error backprop, SAL-learned feedback) on hand-built spike trains."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from biobench import OptimizerSettings, decay_per_step, exponential_trace
from biobench_plugins.architectures.snn import SpikingNetwork
from biobench_plugins.rules.sal_feedback_alignment import SalFeedbackAlignment, alignment_change
from biobench_plugins.rules.spiking_error_backprop import (
    SpikingErrorBackprop,
    has_fired,
    regular_spike_train,
    signed_error_spikes,
)
from biobench_plugins.rules.stdp import STDP, pair_stdp

HALF = 1.0 / math.log(2.0)  # a time constant whose per-step decay is exactly 0.5


def train(*times: int, steps: int = 5) -> torch.Tensor:
    """A (steps, 1, 1) spike train with spikes at ``times``."""
    s = torch.zeros(steps, 1, 1)
    for t in times:
        s[t] = 1.0
    return s


def small_network(hidden: int = 16, steps: int = 8, seed: int = 0, inputs: int = 784, classes: int = 10):
    return SpikingNetwork(hidden=hidden, num_steps=steps).build(inputs, classes, torch.Generator().manual_seed(seed))


# --- traces and STDP ---------------------------------------------------------------------------


def test_decay_per_step():
    assert decay_per_step(HALF) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        decay_per_step(0.0)


def test_exponential_trace_includes_the_current_spike():
    s = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(4, 1)
    assert exponential_trace(s, 0.5).view(4).tolist() == [1.0, 0.5, 1.25, 0.625]


@pytest.mark.parametrize(
    ("pre_times", "post_times", "expected"),
    [
        ((1,), (3,), 0.25),  # pre 2 steps before post: +A+ * 0.5^2
        ((3,), (1,), -0.125),  # post 2 steps before pre: -A- * 0.25^2 with A- = 2
        ((2,), (2,), 1.0),  # same step counts as causal: +A+
        ((0, 4), (2,), 0.25 - 0.125),  # one causal pair (d = 2), one acausal pair (d = -2)
        ((), (1, 2), 0.0),  # no pre spike, no change
    ],
)
def test_pair_stdp_window(pre_times, post_times, expected):
    change = pair_stdp(train(*pre_times), train(*post_times), a_plus=1.0, a_minus=2.0, decay_plus=0.5, decay_minus=0.25)
    assert change.shape == (1, 1)
    assert change.item() == pytest.approx(expected)


def test_pair_stdp_sums_over_the_batch_and_indexes_out_by_in():
    pre = torch.zeros(3, 2, 3)
    post = torch.zeros(3, 2, 2)
    pre[0, 0, 2] = 1.0  # example 0: input 2 at t=0
    post[1, 0, 1] = 1.0  # example 0: output 1 at t=1  -> dW[1, 2] += 0.5
    pre[0, 1, 2] = 1.0  # example 1: the same pair once more
    post[1, 1, 1] = 1.0
    pre[2, 1, 0] = 1.0  # example 1: input 0 at t=2 after output 1 at t=1 -> dW[1, 0] -= 1 * 0.5
    change = pair_stdp(pre, post, a_plus=1.0, a_minus=1.0, decay_plus=0.5, decay_minus=0.5)
    expected = torch.zeros(2, 3)
    expected[1, 2] = 1.0
    expected[1, 0] = -0.5
    assert torch.allclose(change, expected)


def brute_force_stdp(pre, post, a_plus, a_minus, lam_plus, lam_minus):
    """Every (pre spike, post spike) pair, one by one."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    change = torch.zeros(n_out, n_in, dtype=torch.float64)
    for b in range(batch):
        for i in range(n_out):
            for j in range(n_in):
                for tp in range(steps):
                    if post[tp, b, i] == 0:
                        continue
                    for tq in range(steps):
                        if pre[tq, b, j] == 0:
                            continue
                        d = tp - tq
                        change[i, j] += a_plus * lam_plus**d if d >= 0 else -a_minus * lam_minus ** (-d)
    return change


def test_stdp_rule_writes_the_pairwise_stdp_of_a_teacher_driven_pass():
    network = small_network(hidden=6, steps=6, inputs=5, classes=3)
    rule = STDP(tau_plus=HALF, tau_minus=20.0)
    rule.bind(network, torch.Generator().manual_seed(0))
    x = torch.rand(4, 5)
    y = torch.tensor([0, 1, 2, 1])
    weights = [layer.weight.detach().clone() for layer in network.layers]
    loss, logits = rule.compute_update(x, y, nn.functional.cross_entropy)
    assert torch.equal(logits, network(x))  # the prediction pass has no teacher
    assert network.layers[-1].drive_noise is None
    assert all(torch.equal(w, layer.weight) for w, layer in zip(weights, network.layers, strict=True))
    # the same teacher pass, done here by hand
    network.layers[-1].drive_noise = 1.0 * (2.0 * nn.functional.one_hot(y, 3).float() - 1.0)
    _, signals = network.forward_with_signals(x)
    network.layers[-1].drive_noise = None
    out = signals[-1].post
    assert torch.equal(out.sum(0) > 0, nn.functional.one_hot(y, 3).bool())  # clamped: only targets fire
    for layer, signal in zip(network.layers, signals, strict=True):
        expected = brute_force_stdp(signal.pre, signal.post, 1.0, 1.05, 0.5, math.exp(-1 / 20.0))
        assert torch.allclose(layer.weight.grad.double(), -expected / 4, atol=1e-5)
        assert layer.bias.grad is None


def test_stdp_optimiser_step_is_the_rule_and_weights_stay_bounded():
    network = small_network(hidden=6, steps=6, inputs=5, classes=3)
    rule = STDP(weight_bound=1.0)
    rule.bind(network, torch.Generator().manual_seed(0))
    optimizer = rule.configure_optimizer(
        rule.trainable_parameters(), OptimizerSettings.resolve(STDP.optimizer, {"lr": 0.5})
    )
    assert isinstance(optimizer, torch.optim.SGD)
    x, y = torch.rand(4, 5), torch.tensor([0, 1, 2, 1])
    before = network.layers[0].weight.detach().clone()
    optimizer.zero_grad()
    rule.compute_update(x, y, nn.functional.cross_entropy)
    change = -network.layers[0].weight.grad.clone()
    optimizer.step()
    assert torch.allclose(network.layers[0].weight, before + 0.5 * change)
    rule.after_step()
    for layer in network.layers:
        assert layer.weight.abs().max() <= 1.0 / math.sqrt(layer.in_features) + 1e-7


# --- spike-based error propagation (Shrestha et al. 2019) ---------------------------------------


def test_regular_spike_train():
    assert regular_spike_train(1.0, 3).tolist() == [1.0, 1.0, 1.0]
    assert regular_spike_train(0.5, 4).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert regular_spike_train(0.25, 8).tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    assert regular_spike_train(0.0, 3).tolist() == [0.0, 0.0, 0.0]


def test_signed_error_spikes_integrate_and_fire_both_ways():
    current = torch.tensor([0.6, 0.6, -1.5, 0.2])
    assert signed_error_spikes(current, 1.0).tolist() == [0.0, 1.0, -1.0, 0.0]
    # threshold 0.5: v = 0.6 -> +1 (0.1); 0.7 -> +1 (0.2); -1.3 -> -1 (-0.8); -0.6 -> -1 (-0.1)
    assert signed_error_spikes(current, 0.5).tolist() == [1.0, 1.0, -1.0, -1.0]


def test_has_fired():
    s = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0]).view(5, 1)
    assert has_fired(s).view(5).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_spiking_error_backprop_on_a_hand_built_network():
    """2 inputs -> 2 hidden -> 2 outputs, 3 steps, inputs 1 and 0 (deterministic spikes); numbers by hand."""
    network = small_network(hidden=2, steps=3, inputs=2, classes=2)
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.5, 0.0], [0.6, 0.0]]))
        network.layers[1].weight.copy_(torch.tensor([[0.5, 0.0], [0.0, 1.2]]))
        for layer in network.layers:
            layer.bias.zero_()
    rule = SpikingErrorBackprop(tau_trace=HALF)
    rule.bind(network, torch.Generator().manual_seed(0))
    assert rule.hidden_error_thresholds.tolist() == pytest.approx([0.425])  # mean |W2|
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    _, signals = network.forward_with_signals(x)
    # hidden: drive 1.5 fires every step; drive 0.6: U 0.6, 1.17 (spike), 0.7115
    assert signals[0].post[:, 0].tolist() == [[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]
    # output 0: drive 0.5: U 0.5, 0.975, 1.426 (spike); output 1: drive 1.2 at t=1 only (spike)
    assert signals[1].post[:, 0].tolist() == [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    errors = rule.error_spikes(signals, y)
    # output: target [1,1,1] / [0,0,0] -> currents [1,1,0] / [0,-1,0]
    assert errors[1][:, 0].tolist() == [[1.0, 0.0], [1.0, -1.0], [0.0, 0.0]]
    # hidden currents (e W2) * gate: [0.5, 0], [0.5, -1.2], [0, 0]; threshold 0.425
    assert errors[0][:, 0].tolist() == [[1.0, 0.0], [1.0, -1.0], [0.0, -1.0]]
    loss, logits = rule.compute_update(x, y, nn.functional.cross_entropy)
    assert logits.tolist() == [[1.0, 1.0]]
    # pre traces (decay 0.5): hidden 0 [1, 1.5, 1.75], hidden 1 [0, 1, 0.5]; input 0 [1, 1.5, 1.75]
    def close(tensor, expected):
        return torch.allclose(tensor, torch.tensor(expected))

    assert close(network.layers[1].weight.grad, [[-2.5, -1.0], [1.5, 1.0]])
    assert close(network.layers[1].bias.grad, [-2.0, 1.0])
    assert close(network.layers[0].weight.grad, [[-2.5, 0.0], [3.25, 0.0]])
    assert close(network.layers[0].bias.grad, [-2.0, 2.0])


# --- spike-based alignment learning (Gierlich et al. 2025) ---------------------------------------


def test_alignment_change_hebbian_for_lower_before_upper():
    low, up = train(0, steps=3), train(1, steps=3)
    # t=1: lower trace 0.5 * 1 -> +0.5; later steps add nothing
    assert alignment_change(low, up, 0.5).item() == pytest.approx(0.5)
    assert alignment_change(low, up, 0.5, start=2).item() == 0.0


def test_alignment_change_anti_hebbian_for_upper_before_lower():
    low, up = train(2, steps=3), train(0, steps=3)
    # t=2: upper trace 0.5^2 -> -0.25
    assert alignment_change(low, up, 0.5).item() == pytest.approx(-0.25)


def test_alignment_change_shape_is_out_by_in_and_sums_trials():
    low = torch.zeros(2, 2, 3)
    up = torch.zeros(2, 2, 2)
    low[0, :, 1] = 1.0  # both trials: lower 1 at t=0, upper 0 at t=1
    up[1, :, 0] = 1.0
    change = alignment_change(low, up, 0.5)
    expected = torch.zeros(2, 3)
    expected[0, 1] = 2 * 0.5
    assert torch.allclose(change, expected)


def test_sal_noise_phase_uses_the_network_neurons_and_restores_them():
    network = small_network(hidden=8, steps=4)
    rule = SalFeedbackAlignment(noise_trials=5, noise_steps=6, noise_burn_in=3)
    rule.bind(network, torch.Generator().manual_seed(0))
    low, up = rule.noise_driven_spikes(1)
    assert low.shape == (9, 5, 8) and up.shape == (9, 5, 10)
    assert 0 < low.mean() < 1 and 0 < up.mean() < 1
    for layer in network.layers:
        assert layer.drive_noise is None and layer.feedback is None and layer.state is None


def test_sal_applies_its_change_after_the_step_only():
    network = small_network(hidden=8, steps=4)
    rule = SalFeedbackAlignment(noise_trials=4, noise_steps=5, noise_burn_in=2, alignment_lr=0.5)
    rule.bind(network, torch.Generator().manual_seed(0))
    before = rule.feedback_weights()["fc2"]
    state = rule.noise_generator.get_state()
    rule.compute_update(torch.rand(3, 784), torch.tensor([1, 2, 3]), nn.functional.cross_entropy)
    assert torch.equal(rule.feedback_weights()["fc2"], before)  # measuring an update moves nothing
    rule.noise_generator.set_state(state)
    low, up = rule.noise_driven_spikes(1)
    expected = 0.5 / 4 * alignment_change(low, up, math.exp(-1 / 2.0), start=2)
    rule.after_step()
    assert torch.allclose(rule.feedback_weights()["fc2"] - before, expected)
    assert expected.abs().sum() > 0


def test_sal_with_symmetric_feedback_gives_backprop_updates():
    network = small_network(hidden=8, steps=5)
    rule = SalFeedbackAlignment()
    rule.bind(network, torch.Generator().manual_seed(0))
    rule.feedback_1.copy_(network.layers[1].weight.detach())
    x, y = torch.rand(6, 784), torch.arange(6)
    rule.compute_update(x, y, nn.functional.cross_entropy)
    sal = [p.grad.clone() for p in network.plastic_parameters()]
    for p in network.plastic_parameters():
        p.grad = None
    nn.functional.cross_entropy(network(x), y).backward()
    for a, b in zip(sal, (p.grad for p in network.plastic_parameters()), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert set(rule.feedback_weights()) == {"fc2"}


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(float((a * b).sum() / (a.norm() * b.norm()))))


def test_sal_aligns_feedback_with_fixed_forward_weights():
    """Alignment phases alone (forward weights fixed) turn a random B towards W (about 39 degrees
    after 60 phases for five different seeds; 90 is unrelated)."""
    network = small_network(hidden=32, steps=4)
    rule = SalFeedbackAlignment(alignment_lr=0.1)
    rule.bind(network, torch.Generator().manual_seed(3))
    forward = network.layers[1].weight.detach()
    start = angle(rule.feedback_1, forward)
    rate = rule.config["alignment_lr"] / rule.config["noise_trials"]
    for _ in range(60):
        low, up = rule.noise_driven_spikes(1)
        rule.feedback_1.add_(rate * alignment_change(low, up, math.exp(-1 / rule.config["tau"]), start=20))
    end = angle(rule.feedback_1, forward)
    assert start > 75.0
    assert end < 50.0
