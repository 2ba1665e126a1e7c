"""The feedback_init option of the rules with random feedback matrices, through one helper (draw_feedback)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from biobench import FEEDBACK_INITS, draw_feedback, uniform_feedback
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.direct_feedback_alignment import DirectFeedbackAlignment
from biobench_plugins.rules.feedback_alignment import FeedbackAlignment
from biobench_plugins.rules.kolen_pollack import KolenPollack
from biobench_plugins.rules.sign_symmetry import SignSymmetry


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("rule", [FeedbackAlignment, DirectFeedbackAlignment, KolenPollack])
def test_feedback_options_are_validated(rule):
    assert rule().config["feedback_init"] == "default" and rule().config["feedback_scale"] == 1.0
    with pytest.raises(ValueError, match="feedback_init='zero' is not one of"):
        rule(feedback_init="zero")
    with pytest.raises(ValueError, match="feedback_scale=0.0 must be > 0.0"):
        rule(feedback_scale=0.0)
    for scheme in FEEDBACK_INITS:
        assert rule(feedback_init=scheme).config["feedback_init"] == scheme


def test_feedback_matrices_follow_feedback_init():
    network = MLP(hidden=[300]).build(200, 400, generator())  # fc2 is (400, 300)
    fa = FeedbackAlignment(feedback_init="xavier_uniform", feedback_scale=2.0)
    fa.bind(network, generator(5))
    b = fa.feedback_weights()["fc2"]
    bound = 2.0 * math.sqrt(6 / 700)
    assert float(b.abs().max()) <= bound and float(b.abs().max()) > 0.999 * bound
    dfa = DirectFeedbackAlignment(feedback_init="kaiming_uniform")
    dfa.bind(MLP(hidden=[300]).build(200, 10, generator()), generator(5))
    d = dfa.feedback_weights()["fc1"]  # (num_classes, width) = (10, 300): fan_in = 300
    assert d.shape == (10, 300)
    assert float(d.abs().max()) <= math.sqrt(6 / 300) and float(d.abs().max()) > 0.99 * math.sqrt(6 / 300)
    kp = KolenPollack(feedback_init="gaussian", feedback_scale=0.2)
    kp.bind(network, generator(5))
    assert float(kp.feedback_weights()["fc2"].std()) == pytest.approx(0.2, rel=0.01)


def test_default_feedback_matrices_are_drawn_as_before():
    network = MLP(hidden=[20, 10]).build(30, 4, generator())
    g = generator(9)
    expected = [(torch.rand(n_out, n_in, generator=g) * 2.0 - 1.0) * (1.0 / n_in**0.5) for n_out, n_in in [(10, 20), (4, 10)]]
    fa = FeedbackAlignment()
    fa.bind(network, generator(9))
    assert torch.equal(fa.feedback_weights()["fc2"], expected[0])
    assert torch.equal(fa.feedback_weights()["fc3"], expected[1])
    g = generator(9)
    dfa = DirectFeedbackAlignment()
    dfa.bind(network, generator(9))
    for name, width in (("fc1", 20), ("fc2", 10)):
        assert torch.equal(dfa.feedback_weights()[name], (torch.rand(4, width, generator=g) * 2.0 - 1.0) * (1 / 2.0))
    assert torch.equal(draw_feedback(3, 5, "default", 0.7, generator(1), 5), uniform_feedback(3, 5, 5, 0.7, generator(1)))


def test_sign_symmetry_options_are_validated_and_unit_magnitudes_draw_nothing():
    assert SignSymmetry().config["magnitude"] == "unit"
    with pytest.raises(ValueError, match="magnitude='random' is not one of"):
        SignSymmetry(magnitude="random")
    with pytest.raises(ValueError, match="feedback_scale=-1.0 must be > 0.0"):
        SignSymmetry(feedback_scale=-1.0)
    g = generator(3)
    state = g.get_state()
    rule = SignSymmetry()
    rule.bind(MLP(hidden=[5]).build(4, 3, generator()), g)
    assert torch.equal(g.get_state(), state)  # B = sign(W): no random draw


def test_sign_symmetry_with_fixed_random_magnitudes_keeps_the_signs_of_w():
    network = MLP(hidden=[6]).build(5, 3, generator())
    rule = SignSymmetry(magnitude="fixed_random", feedback_init="gaussian", feedback_scale=0.3)
    rule.bind(network, generator(7))
    magnitudes = draw_feedback(3, 6, "gaussian", 0.3, generator(7)).abs()
    w = network.layers[1].weight.detach()
    b = rule.feedback_weights()["fc2"]
    assert torch.equal(b, torch.sign(w) * magnitudes)
    assert bool((torch.sign(b) == torch.sign(w)).all())
    # the update is feedback alignment's with the same matrix
    x, y = torch.rand(8, 5, generator=generator(1)), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    rule.compute_update(x, y, F.cross_entropy)
    ss_grads = [p.grad.clone() for p in network.module.parameters()]
    for p in network.module.parameters():
        p.grad = None
    fa = FeedbackAlignment()
    fa.bind(network, generator())
    fa.feedback_1.copy_(b)
    fa.compute_update(x, y, F.cross_entropy)
    assert all(torch.equal(a, p.grad) for a, p in zip(ss_grads, network.module.parameters(), strict=True))
    assert torch.equal(rule.feedback_weights()["fc2"], b)  # fixed (W unchanged: no optimiser step here)


def test_sign_symmetry_with_batch_random_magnitudes_redraws_them_every_update():
    network = MLP(hidden=[40]).build(5, 30, generator())
    rule = SignSymmetry(magnitude="batch_random")
    rule.bind(network, generator(2))
    x, y = torch.rand(4, 5), torch.tensor([0, 1, 2, 3])
    seen = []
    for _ in range(2):
        rule.compute_update(x, y, F.cross_entropy)
        seen.append(rule.feedback_weights()["fc2"])
    w = network.layers[1].weight.detach()
    assert not torch.equal(seen[0], seen[1])
    for b in seen:
        assert bool((torch.sign(b) == torch.sign(w)).all())
        # |U(-1/sqrt(40), 1/sqrt(40))|
        assert float(b.abs().max()) <= 1 / math.sqrt(40) and float(b.abs().max()) > 0.95 / math.sqrt(40)
