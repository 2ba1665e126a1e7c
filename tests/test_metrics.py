"""Harness metrics on small synthetic networks: known answers, null reasons, untouched training state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from biobench import (
    Architecture,
    Hyperparameter,
    LearningRule,
    Network,
    PlasticLinear,
    Task,
    TaskData,
)
from biobench.metrics import MetricUndefined, fgsm_key
from biobench.metrics.alignment import FeedbackAngle, SignalAngle, mean_example_angle
from biobench.metrics.base import angle_deg, cosine
from biobench.metrics.gradients import (
    GradientBias,
    OutputSignals,
    UpdateAngle,
    per_example_reference_gradients,
    per_example_rule_updates,
    reference_gradient,
    rule_update,
)
from biobench.metrics.harness import HarnessMeasurements
from biobench.metrics.robustness import FGSMAccuracy, fgsm_examples
from biobench.metrics.state import TrainingState
from biobench.metrics.variance import UpdateVariance, layer_ratio, layer_statistics, ratio_entry
from biobench.results.records import validate_record
from biobench_plugins.architectures.mlp import MLP
from biobench_plugins.rules.backprop import Backprop

# ---------------------------------------------------------------- fixtures


class _Digits(Task):
    """A synthetic 10-class task with the MNIST input size (never loaded from disk)."""

    name = "synthetic"
    description = "random inputs in [0, 1]"
    num_classes = 10
    input_size = 784

    def load(self, data_dir):
        raise AssertionError("not used")


def _data(n_train: int = 64, n_test: int = 50, seed: int = 0) -> TaskData:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 784, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return TaskData(x[:n_train], y[:n_train], x[:0], y[:0], x[n_train:], y[n_train:])


def _mlp(hidden=(32,), seed: int = 0) -> Network:
    return MLP(hidden=list(hidden)).build(784, 10, torch.Generator().manual_seed(seed))


def _bind(rule: LearningRule, network: Network, seed: int = 1) -> LearningRule:
    rule.bind(network, torch.Generator().manual_seed(seed))
    return rule


class _FeedbackAlignment(LearningRule):
    """Feedback alignment for the tests: ``layer.feedback = g @ B`` with B = W (symmetric) or random."""

    name = "test-fa"
    description = "feedback alignment with symmetric or random feedback"
    requires = frozenset({"feedback"})
    weight_transport = False
    global_error = True
    defaults = {"symmetric": Hyperparameter(True, "test")}

    def bind(self, network, generator):
        super().bind(network, generator)
        self.matrices = {}
        for layer in network.layers[1:]:
            if self.config["symmetric"]:
                layer.feedback = lambda g, W=layer.weight: g @ W
                self.matrices[layer.layer_name] = layer.weight
            else:
                B = torch.randn(layer.weight.shape, generator=generator) / layer.in_features**0.5
                layer.feedback = lambda g, B=B: g @ B
                self.matrices[layer.layer_name] = B

    def compute_update(self, x, y, loss_fn):
        logits = self.network(x)
        loss = loss_fn(logits, y)
        loss.backward()
        return loss.detach(), logits.detach()

    def feedback_weights(self):
        return dict(self.matrices)


class _Fixed(LearningRule):
    """Writes a chosen update: Gaussian noise from its generator, a constant, or nothing."""

    name = "test-fixed"
    description = "writes noise, a constant or nothing"
    weight_transport = False
    global_error = False
    defaults = {"kind": Hyperparameter("noise", "test")}

    def bind(self, network, generator):
        super().bind(network, generator)
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        self.calls = 0
        self.register_buffer("last_noise_sum", torch.zeros(()))

    def compute_update(self, x, y, loss_fn):
        self.calls += 1
        for p in self.network.plastic_parameters():
            if self.config["kind"] == "noise":
                noise = torch.randn(p.shape, generator=self.generator)
                self.last_noise_sum += noise.sum()
                p.grad = noise
            elif self.config["kind"] == "constant":
                p.grad = torch.full_like(p, 0.5)
        with torch.no_grad():
            logits = self.network(x)
        return loss_fn(logits, y), logits


class _NoisyBackprop(Backprop):
    """Backprop plus a little noise from the rule's generator and a perturbation applied and undone."""

    name = "test-noisy-backprop"

    def bind(self, network, generator):
        super().bind(network, generator)
        self.generator = torch.Generator().manual_seed(7)
        self.steps = 0

    def compute_update(self, x, y, loss_fn):
        self.steps += 1
        w = self.network.layers[0].weight
        with torch.no_grad():  # perturb and restore a weight in place, as perturbation rules do
            w.add_(1.0)
            w.sub_(1.0)
        loss, logits = super().compute_update(x, y, loss_fn)
        for p in self.network.plastic_parameters():
            p.grad.add_(1e-3 * torch.randn(p.shape, generator=self.generator))
        torch.rand(3)  # and a draw from torch's global generator
        return loss, logits


# ---------------------------------------------------------------- cosine and angle


def test_cosine_and_angle_of_hand_computed_vectors():
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    assert cosine(torch.tensor([1.0, 2.0]), torch.tensor([-2.0, -4.0])) == pytest.approx(-1.0, abs=1e-15)
    assert angle_deg(1 / math.sqrt(2)) == pytest.approx(45.0, abs=1e-12)
    assert angle_deg(0.0) == pytest.approx(90.0, abs=1e-12)
    with pytest.raises(MetricUndefined, match="zero"):
        cosine(torch.zeros(3), torch.ones(3))
    with pytest.raises(MetricUndefined, match="NaN"):
        cosine(torch.tensor([1.0, float("nan")]), torch.ones(2))


# ---------------------------------------------------------------- gradient bias and update angle


def _bias(rule_cls, hidden=(32, 16), **options):
    network = _mlp(hidden)
    rule = _bind(rule_cls(**options), network)
    data = _data()
    task = _Digits()
    update = rule_update(network, rule, task, data.train_x, data.train_y)
    reference = reference_gradient(network, task, data.train_x, data.train_y)
    return GradientBias().compute(update, reference), network


def test_backprop_against_itself_has_bias_one_and_angle_zero():
    bias, network = _bias(Backprop)
    assert set(bias.value["per_layer"]) == {"fc1", "fc2", "fc3"}
    for value in [bias.value["overall"], bias.value["hidden"], *bias.value["per_layer"].values()]:
        assert value == pytest.approx(1.0, abs=1e-12)
    angle = UpdateAngle().compute(bias)
    assert angle.value["overall"] == pytest.approx(0.0, abs=1e-4)
    assert max(angle.value["per_layer"].values()) == pytest.approx(0.0, abs=1e-4)
    assert bias.reasons == {}


def test_feedback_alignment_with_symmetric_feedback_has_bias_one():
    bias, _ = _bias(_FeedbackAlignment, symmetric=True)
    for value in [bias.value["overall"], bias.value["hidden"], *bias.value["per_layer"].values()]:
        assert value == pytest.approx(1.0, abs=1e-6)


def test_the_feedback_alignment_plugin_with_symmetric_feedback_has_bias_one_and_angle_zero():
    plugin = pytest.importorskip("biobench_plugins.rules.feedback_alignment")
    network = _mlp((32, 16))
    rule = _bind(plugin.FeedbackAlignment(), network)
    data, task = _data(), _Digits()
    random_alignment = FeedbackAngle().compute(network, rule)
    assert 80.0 < random_alignment.value["mean"] < 100.0  # fixed random feedback at initialisation
    with torch.no_grad():
        for layer in network.layers[1:]:
            rule.feedback_matrix(layer).copy_(layer.forward_matrix())
    update = rule_update(network, rule, task, data.train_x, data.train_y)
    bias = GradientBias().compute(update, reference_gradient(network, task, data.train_x, data.train_y))
    assert bias.value["overall"] == pytest.approx(1.0, abs=1e-6)
    assert bias.value["hidden"] == pytest.approx(1.0, abs=1e-6)
    alignment = FeedbackAngle().compute(network, rule)
    assert alignment.value["per_layer"] == {"fc2": pytest.approx(0.0, abs=1e-3), "fc3": pytest.approx(0.0, abs=1e-3)}


def test_feedback_alignment_with_random_feedback_is_exact_only_at_the_output():
    bias, _ = _bias(_FeedbackAlignment, symmetric=False)
    # the readout's own gradient is local and exact; hidden layers get the random feedback
    assert bias.value["per_layer"]["fc3"] == pytest.approx(1.0, abs=1e-6)
    assert bias.value["per_layer"]["fc1"] < 0.5
    # the headline is the mean of the hidden layers' cosines, never the readout-dominated overall one
    assert bias.value["hidden"] == pytest.approx((bias.value["per_layer"]["fc1"] + bias.value["per_layer"]["fc2"]) / 2)
    assert bias.value["overall"] > bias.value["hidden"]


def test_a_random_update_has_bias_near_zero():
    bias, network = _bias(_Fixed, hidden=(64,), kind="noise")
    n = sum(p.numel() for p in network.plastic_parameters())
    # cos(noise, g) is approximately N(0, 1/n) for isotropic noise: 5 standard deviations
    assert abs(bias.value["overall"]) < 5 / math.sqrt(n)
    assert abs(bias.value["per_layer"]["fc1"]) < 5 / math.sqrt(784 * 64 + 64)


def test_a_zero_update_is_null_with_a_reason():
    bias, _ = _bias(_Fixed, kind="nothing")
    assert bias.value["overall"] is None and bias.value["per_layer"]["fc1"] is None
    assert "zero" in bias.reasons["overall"] and "zero" in bias.reasons["per_layer.fc2"]
    angle = UpdateAngle().compute(bias)
    assert angle.value["overall"] is None and "zero" in angle.reasons["overall"]


def test_a_single_layer_network_uses_its_only_layer_as_the_hidden_entry():
    bias, _ = _bias(Backprop, hidden=())
    assert bias.value["hidden"] == pytest.approx(1.0, abs=1e-12) == bias.value["per_layer"]["fc1"]
    assert bias.value["overall"] == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- gradient variance


def test_variance_statistics_of_hand_computed_updates():
    # u = (1, 0), (3, 2): m = (2, 1), s² = (1 + 1 + 1 + 1) / 1 = 4, ‖m‖² = 5, S = 5 − 4/2 = 3
    stats = layer_statistics(torch.tensor([[1.0, 0.0], [3.0, 2.0]]))
    assert stats["noise"] == pytest.approx(4.0) and stats["signal"] == pytest.approx(3.0)
    assert stats["snr"] == pytest.approx(0.75) and stats["relative_variance"] == pytest.approx(4 / 3)
    assert stats["noise_floor"] == pytest.approx(math.sqrt(2 / 2) / 2) and stats["elements"] == 2


def test_a_constant_update_has_no_variance_and_a_finite_relative_variance():
    stats = layer_statistics(torch.full((8, 5), 0.5))
    assert stats["snr"] is None  # infinite: recorded as undefined, never as 1/eps
    assert stats["relative_variance"] == 0.0 and stats["signal"] == pytest.approx(5 * 0.25)


def test_all_zero_updates_are_undefined_with_a_reason():
    with pytest.raises(MetricUndefined, match="zero"):
        layer_statistics(torch.zeros(4, 3))
    out = UpdateVariance().side([{"a": torch.zeros(4)} for _ in range(3)])
    assert out.value["per_layer"]["a"] is None and "zero" in out.reasons["per_layer.a"]


def test_pure_noise_sits_at_the_noise_floor():
    g = torch.Generator().manual_seed(0)
    n, d = 32, 20000
    stats = layer_statistics(torch.randn(n, d, generator=g))
    floor = math.sqrt(2 / d) / n
    assert stats["noise_floor"] == pytest.approx(floor)
    assert stats["snr"] < 5 * floor  # the positive part of a zero-mean estimate with std `floor`
    assert stats["relative_variance"] is None or stats["relative_variance"] > 1 / (5 * floor)


def test_a_known_mixture_gives_its_signal_to_noise_ratio():
    g = torch.Generator().manual_seed(1)
    n, d, sigma = 256, 4000, 2.0
    mean = torch.full((d,), 0.25)  # ‖μ‖² = 250, tr Cov = σ² d = 16000: SNR = 0.015625
    stats = layer_statistics(mean + sigma * torch.randn(n, d, generator=g))
    assert stats["snr"] == pytest.approx(250 / 16000, rel=0.06)
    assert stats["relative_variance"] == pytest.approx(16000 / 250, rel=0.06)


def test_hidden_entries_are_means_over_hidden_layers():
    g = torch.Generator().manual_seed(2)
    samples = [
        {"a": torch.tensor([1.0, 0.0]) + 0.1 * torch.randn(2, generator=g), "b": torch.randn(3, generator=g),
         "out": torch.randn(2, generator=g)}
        for _ in range(6)
    ]
    out = UpdateVariance().side(samples)
    per_layer = out.value["per_layer"]
    assert out.value["snr"]["hidden"] == pytest.approx((per_layer["a"]["snr"] + per_layer["b"]["snr"]) / 2)


def _rule_variance(kind: str, hidden=(64,)):
    network = _mlp(hidden)
    rule = _bind(_Fixed(kind=kind), network)
    data = _data(n_train=32)
    state = TrainingState(network, rule)
    samples = per_example_rule_updates(network, rule, _Digits(), data.train_x, data.train_y, state)
    out = UpdateVariance().side(samples)
    state.restore()
    return out


def test_a_rule_writing_noise_has_no_detectable_signal():
    out = _rule_variance("noise")
    for name, stats in out.value["per_layer"].items():
        assert stats["snr"] < 6 * stats["noise_floor"], name


def test_backprop_variance_matches_the_rule_variance_of_backprop_and_the_ratio_is_one():
    network = _mlp((16,))
    rule = _bind(Backprop(), network)
    data, task = _data(n_train=32), _Digits()
    variance = UpdateVariance()
    state = TrainingState(network, rule)
    rule_out = variance.side(per_example_rule_updates(network, rule, task, data.train_x, data.train_y, state))
    state.restore()
    ref_out = variance.side(per_example_reference_gradients(network, task, data.train_x, data.train_y))
    ratio = UpdateVariance.ratio(rule_out, ref_out)
    for name in ("fc1", "fc2"):
        ours, theirs = rule_out.value["per_layer"][name], ref_out.value["per_layer"][name]
        assert ours["noise"] == pytest.approx(theirs["noise"], rel=1e-6)
        assert ours["signal"] == pytest.approx(theirs["signal"], rel=1e-5, abs=1e-12)
        if theirs["snr"] > theirs["noise_floor"]:  # random labels: a mean gradient may be undetectable
            assert ratio.value["per_layer"][name] == pytest.approx(1.0, rel=1e-5)
        else:
            why = ratio.reasons[f"per_layer.{name}"]
            assert ratio.value["per_layer"][name] is None and ("zero" in why or "noise floor" in why)


def test_a_ratio_to_a_backprop_snr_within_its_noise_floor_is_undefined():
    above, below = {"snr": 0.5, "noise_floor": 0.01}, {"snr": 0.005, "noise_floor": 0.01}
    assert layer_ratio({"snr": 0.25}, above) == (0.5, "")
    value, why = layer_ratio({"snr": 0.25}, below)
    assert value is None and "noise floor" in why
    # the column recomputes a stored record's ratio: fc1 (hidden) below the floor, fc2 the readout
    sides = {
        "rule": {"per_layer": {"fc1": {"snr": 0.3}, "fc2": {"snr": 0.2}}},
        "backprop": {"per_layer": {"fc1": below, "fc2": above}},
        "snr_ratio": {"hidden": 60.0, "per_layer": {"fc1": 60.0, "fc2": 0.4}},  # as stored before the rule
    }
    assert ratio_entry({"update_variance": {"final": sides}}, "final") is None
    sides["backprop"]["per_layer"]["fc1"] = above
    assert ratio_entry({"update_variance": {"final": sides}}, "final") == pytest.approx(0.6)


# ---------------------------------------------------------------- feedback and signal angles


class _GivenFeedback(LearningRule):
    """Reports the feedback matrices it is given (only ``feedback_weights`` matters here)."""

    name = "test-given-feedback"
    description = "returns chosen feedback matrices"
    weight_transport = False
    global_error = False

    def __init__(self, matrices):
        super().__init__()
        self.matrices = matrices

    def compute_update(self, x, y, loss_fn):
        raise AssertionError("not used")

    def feedback_weights(self):
        return self.matrices


def _feedback_angle(network, matrices):
    return FeedbackAngle().compute(network, _bind(_GivenFeedback(matrices), network))


def test_feedback_angle_of_matrices_equal_opposite_and_orthogonal_to_the_forward_weights():
    network = _mlp((32, 16))
    w2, w3 = network.layers[1].weight.detach(), network.layers[2].weight.detach()
    r = torch.randn(w3.shape, generator=torch.Generator().manual_seed(3))
    orthogonal = r - (r * w3).sum() / (w3 * w3).sum() * w3  # Gram-Schmidt in the Frobenius product
    out = _feedback_angle(network, {"fc2": -w2.clone(), "fc3": orthogonal})
    assert out.value["per_layer"]["fc2"] == pytest.approx(180.0, abs=1e-4)
    assert out.value["per_layer"]["fc3"] == pytest.approx(90.0, abs=1e-6)
    assert out.value["mean"] == pytest.approx(135.0, abs=1e-4)
    same = _feedback_angle(network, {"fc2": w2.clone()})
    assert same.value["per_layer"]["fc2"] == pytest.approx(0.0, abs=1e-4)


def test_feedback_angle_is_null_without_matrices_of_the_forward_shape():
    network = _mlp((32, 16))
    none = _feedback_angle(network, {})
    assert none.value is None and "no feedback matrix" in none.reasons[""]
    direct = _feedback_angle(network, {"fc1": torch.ones(10, 32)})  # a DFA-shaped matrix: see the signal angle
    assert direct.value is None and "signal_angle_deg" in direct.reasons[""]
    zero = _feedback_angle(network, {"fc2": torch.zeros(16, 32)})
    assert zero.value["per_layer"]["fc2"] is None and "zero" in zero.reasons["per_layer.fc2"]


def _signal_angle(rule, network):
    data, task = _data(), _Digits()
    ours, theirs = OutputSignals(), OutputSignals()
    rule_update(network, rule, task, data.train_x, data.train_y, ours)
    reference_gradient(network, task, data.train_x, data.train_y, theirs)
    return SignalAngle().compute(network, ours, theirs)


def test_backprop_sends_every_layer_backprops_signal():
    network = _mlp((32, 16))
    out = _signal_angle(_bind(Backprop(), network), network)
    assert out.value["per_layer"] == {k: pytest.approx(0.0, abs=1e-3) for k in ("fc1", "fc2", "fc3")}
    assert out.value["hidden"] == pytest.approx(0.0, abs=1e-3)


def test_direct_feedback_through_the_readout_weights_sends_exactly_backprops_signal():
    # one hidden layer: dL/dh = e W2, so the direct signal e B with B = W2 is backprop's (0°), -W2 is 180°
    network = _mlp((32,))
    w2 = network.layers[1].weight.detach().clone()

    class _Direct(_FeedbackAlignment):
        name = "test-direct"

        def bind(self, network, generator):
            LearningRule.bind(self, network, generator)
            self.matrices = {}
            network.layers[1].feedback = lambda g: g @ self.direct

    for matrix, expected in ((w2, 0.0), (-w2, 180.0)):
        rule = _bind(_Direct(), network)
        rule.direct = matrix
        out = _signal_angle(rule, network)
        assert out.value["per_layer"]["fc1"] == pytest.approx(expected, abs=1e-3)
        assert out.value["per_layer"]["fc2"] == pytest.approx(0.0, abs=1e-3)  # the readout gets e itself
        network.layers[1].feedback = None


def test_per_example_angles_are_averaged_over_examples_with_both_signals():
    ours = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])
    theirs = torch.tensor([[0.0, 3.0], [1.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    # 90 deg, 0 deg, (left out: zero signal), 180 deg -> mean 90; the batch angle is another number
    assert mean_example_angle(ours, theirs) == pytest.approx(90.0)
    assert mean_example_angle(ours[:2], theirs[:2]) == pytest.approx(45.0)
    assert mean_example_angle(ours[2:3], theirs[2:3]) is None


def test_the_signal_angle_has_a_per_example_probe():
    network = _mlp((32, 16))
    out = _signal_angle(_bind(Backprop(), network), network)
    example = out.value["per_example"]
    assert example["per_layer"] == {k: pytest.approx(0.0, abs=1e-3) for k in ("fc1", "fc2", "fc3")}
    assert example["hidden"] == pytest.approx(0.0, abs=1e-3)
    flipped = _signal_angle(_bind(_FeedbackAlignment(symmetric=False), network), network)
    per_example = flipped.value["per_example"]["per_layer"]["fc1"]
    assert 0.0 < per_example < 180.0 and per_example != pytest.approx(flipped.value["per_layer"]["fc1"], abs=1e-6)


def test_a_rule_without_a_backward_pass_sends_no_signal():
    network = _mlp((16,))
    out = _signal_angle(_bind(_Fixed(kind="noise"), network), network)
    assert out.value is None and "no signal through autograd" in out.reasons[""]


# ---------------------------------------------------------------- FGSM


class _Linear2(Architecture):
    """logits = W x, 2 inputs, 2 classes; for hand-computed FGSM cases."""

    name = "linear2"
    description = "2x2 linear"
    capabilities = frozenset({"differentiable", "feedback", "dense"})

    def build(self, input_size, num_classes, generator):
        layer = PlasticLinear("out", 2, 2, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        return Network(nn.Sequential(layer), [layer], self)


class _TwoClass(_Digits):
    num_classes = 2
    input_size = 2


def test_fgsm_on_a_hand_computed_linear_model():
    network = _Linear2().build(2, 2, torch.Generator())
    x = torch.tensor([[0.5, 0.45], [0.9, 0.1]])
    y = torch.tensor([0, 0])
    # dL/dx = (softmax - onehot) W has sign (-, +) for class 0, so x_adv = x + eps (-1, +1) and the
    # logits become (2 (x0 - eps), x1 + eps): example 1 flips when eps > 0.55 / 3 = 0.1833,
    # example 2 (margin 1.7) when eps > 1.7 / 3 = 0.5667
    out = FGSMAccuracy((0, 40, 50, 150), chunk=1).compute(network, _TwoClass(), x, y)
    assert out.value["fgsm_acc"] == {"0/255": 1.0, "40/255": 1.0, "50/255": 0.5, "150/255": 0.0}
    assert out.value["fgsm_drop"] == {"0/255": 0.0, "40/255": 0.0, "50/255": 0.5, "150/255": 1.0}
    assert out.value["fgsm_examples"] == 2
    low, high = out.value["fgsm_ci95"]["50/255"]
    assert low < 0.5 < high and 0.0 <= low and high <= 1.0


def test_the_wilson_interval_matches_a_hand_computed_case():
    from biobench.metrics.robustness import wilson_interval

    # p = 0.8, n = 100, z = 1.959964, z² = 3.8414588: centre (0.8 + 0.0192073) / 1.0384146 = 0.7889020,
    # half 1.959964 × sqrt(0.0016 + 0.0000960365) / 1.0384146 = 1.959964 × 0.0411830 / 1.0384146 = 0.0777312
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7111708, abs=1e-6) and high == pytest.approx(0.8666332, abs=1e-6)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)


def test_fgsm_examples_stay_in_the_pixel_range():
    x = torch.tensor([[0.0, 0.99, 0.5]])
    adv = fgsm_examples(x, torch.tensor([[-1.0, 2.0, 0.0]]), 12 / 255)
    assert torch.equal(adv, torch.tensor([[0.0, 1.0, 0.5]]))


def test_fgsm_at_zero_perturbation_equals_clean_accuracy():
    network = _mlp((32,))
    data = _data(n_test=200)
    network.module.eval()
    with torch.no_grad():
        clean = int((network(data.test_x).argmax(1) == data.test_y).sum()) / len(data.test_y)
    out = FGSMAccuracy((0, 8)).compute(network, _Digits(), data.test_x, data.test_y)
    assert out.value["fgsm_acc"][fgsm_key(0)] == clean
    assert out.value["fgsm_acc"][fgsm_key(8)] <= clean
    assert out.value["fgsm_drop"][fgsm_key(8)] == clean - out.value["fgsm_acc"][fgsm_key(8)]


class _NotDifferentiable(MLP):
    name = "no-grad-mlp"
    capabilities = frozenset({"feedback", "dense"})


def test_metrics_needing_a_reference_are_null_without_the_differentiable_capability():
    network = _NotDifferentiable(hidden=[8]).build(784, 10, torch.Generator().manual_seed(0))
    rule = _bind(_Fixed(kind="noise"), network)
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.at_start(0)
    harness.at_end(1, 1)
    metrics, reasons = {}, {}
    harness.contribute(metrics, reasons, finished=True)
    for key in ("gradient_bias", "gradient_bias_curve", "update_angle_deg", "signal_angle_deg", "fgsm_acc"):
        assert metrics[key] is None and "differentiable" in reasons[key], key
    for point in ("initial", "final"):
        variance = metrics["update_variance"][point]
        assert variance["backprop"] is None and "differentiable" in reasons[f"update_variance.{point}.backprop"]
        assert variance["rule"]["per_layer"]["fc1"]["snr"] is not None  # the rule's own needs no reference
    assert metrics["gradient_reference"].startswith("none")


# ---------------------------------------------------------------- harness: state, record entries


def _state_fingerprint(network, rule):
    return {
        "weights": [p.detach().clone() for p in network.module.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in network.module.parameters()],
        "grad_ids": [id(p.grad) for p in network.module.parameters()],
        "rule_generator": rule.generator.get_state(),
        "global": torch.get_rng_state(),
        "buffers": {k: v.clone() for k, v in rule.named_buffers()},
        "steps": getattr(rule, "steps", getattr(rule, "calls", None)),
        "training": network.module.training,
    }


def _assert_same(a, b):
    assert len(a["weights"]) == len(b["weights"])
    assert all(torch.equal(x, y) for x, y in zip(a["weights"], b["weights"], strict=True))
    assert all(
        (x is None and y is None) or torch.equal(x, y) for x, y in zip(a["grads"], b["grads"], strict=True)
    )
    assert a["grad_ids"] == b["grad_ids"]
    assert torch.equal(a["rule_generator"], b["rule_generator"])
    assert torch.equal(a["global"], b["global"])
    assert a["buffers"].keys() == b["buffers"].keys()
    assert all(torch.equal(a["buffers"][k], b["buffers"][k]) for k in a["buffers"])
    assert a["steps"] == b["steps"] and a["training"] == b["training"]


@pytest.mark.parametrize("rule_cls", [_NoisyBackprop, _Fixed])
def test_measurements_leave_the_training_state_as_they_found_it(rule_cls):
    network = _mlp((16,))
    rule = _bind(rule_cls(), network)
    data, task = _data(), _Digits()
    rule.compute_update(data.train_x[:10], data.train_y[:10], task.loss)  # grads present, as mid-training
    before = _state_fingerprint(network, rule)
    harness = HarnessMeasurements(network, rule, task, data, seed=3)
    harness.measure_point(0, 0)
    harness.measure_variance("final")
    harness.measure_fgsm()
    _assert_same(before, _state_fingerprint(network, rule))


def test_rule_and_reference_run_in_training_mode_and_the_mode_is_restored():
    modes = []

    class _Dropout(MLP):
        name = "dropout-mlp"

        def forward(self, module, x):
            modes.append(module.training)
            return module(torch.nn.functional.dropout(x, 0.5, training=module.training))

    network = _Dropout(hidden=[16]).build(784, 10, torch.Generator().manual_seed(0))
    rule = _bind(Backprop(), network)
    network.module.eval()
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.measure_point(0, 0)
    assert modes == [True, True]  # the rule's update, then the reference
    # dropout draws the same mask in both (same seed), so backprop is still exactly aligned
    assert harness.points["bias"][0][2].value["overall"] == pytest.approx(1.0, abs=1e-12)
    assert network.module.training is False


class _LazyState(_NoisyBackprop):
    """Creates an attribute and a buffer on its first update."""

    name = "test-lazy"

    def compute_update(self, x, y, loss_fn):
        if not hasattr(self, "lazily_created"):
            self.lazily_created = torch.ones(2)
            self.register_buffer("lazy_buffer", torch.ones(2))
        return super().compute_update(x, y, loss_fn)


def test_state_created_during_a_measurement_is_removed():
    network = _mlp((16,))
    rule = _bind(_LazyState(), network)
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.measure_point(0, 0)
    assert not hasattr(rule, "lazily_created") and "lazy_buffer" not in dict(rule.named_buffers())


def _train(measure: bool, steps: int = 6) -> list[torch.Tensor]:
    torch.manual_seed(11)
    network = _mlp((16,))
    rule = _bind(_NoisyBackprop(), network)
    data, task = _data(n_train=60), _Digits()
    optimizer = rule.configure_optimizer(rule.trainable_parameters())
    harness = HarnessMeasurements(network, rule, task, data, seed=0)
    for step in range(steps):
        if measure and step % 2 == 0:
            harness.measure_point(step // 2, step)
        optimizer.zero_grad(set_to_none=True)
        rule.compute_update(data.train_x[step * 10 : step * 10 + 10], data.train_y[step * 10 : step * 10 + 10], task.loss)
        if measure and step == 3:
            harness.measure_variance("final")
            harness.measure_fgsm()
        optimizer.step()
    return [p.detach().clone() for p in network.module.parameters()]


def test_training_trajectory_does_not_depend_on_measurements():
    with_metrics, without = _train(True), _train(False)
    assert all(torch.equal(a, b) for a, b in zip(with_metrics, without, strict=True))


def test_contributed_entries_validate_and_unfinished_runs_are_null_with_reasons():
    network = _mlp((16,))
    rule = _bind(_FeedbackAlignment(symmetric=False), network)
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.measure_point(0, 0)
    harness.measure_point(1, 5)
    harness.measure_variance("final")
    harness.measure_fgsm()

    def record(metrics, reasons):
        metrics = {"test_acc": 0.5, "epochs": 1, "history": {}, **metrics}
        return {
            "schema_version": 2, "run_id": "r", "config_hash": "0" * 16, "task": "t", "architecture": "a",
            "rule": "r", "seed": 0, "profile": "smoke", "status": "ok", "reason": None,
            "config": {k: {"name": k, "config": {}, "entry_point": k, "distribution": "d", "version": "0"}
                       for k in ("task", "architecture", "rule")} | {"run": {}},
            "metrics": metrics, "metric_reasons": reasons,
            "environment": {"packages": {}, "git_revision": "x", "python": "3", "platform": "p"},
        }

    metrics, reasons = {}, {}
    harness.contribute(metrics, reasons, finished=True)
    validate_record(record(metrics, reasons))
    assert [(p["epoch"], p["step"]) for p in metrics["gradient_bias_curve"]] == [(0, 0), (1, 5)]
    assert metrics["gradient_bias"]["hidden"] == metrics["gradient_bias_curve"][-1]["hidden"]
    assert 60.0 < metrics["feedback_angle_deg"]["per_layer"]["fc2"] < 120.0  # random feedback at init
    assert metrics["signal_angle_deg"]["per_layer"]["fc2"] == pytest.approx(0.0, abs=1e-3)  # the readout
    assert 30.0 < metrics["signal_angle_deg"]["hidden"] < 150.0
    assert len(metrics["feedback_angle_curve"]) == len(metrics["signal_angle_curve"]) == 2
    assert set(metrics["fgsm_acc"]) == {"0/255", "4/255", "8/255", "12/255"}
    final = metrics["update_variance"]["final"]
    assert final["rule"]["per_layer"]["fc1"]["noise"] > 0 and final["backprop"]["per_layer"]["fc1"]["noise"] > 0
    assert metrics["update_variance"]["initial"] is None and "update_variance.initial" in reasons
    assert metrics["harness_settings"]["snr_examples"] == 32 and metrics["harness_metrics_time_s"] > 0

    unfinished, why = {}, {}
    harness.contribute(unfinished, why, finished=False)
    validate_record(record(unfinished, why))
    assert unfinished["gradient_bias"] is None and "stopped" in why["gradient_bias"]
    assert unfinished["fgsm_acc"] is None and len(unfinished["gradient_bias_curve"]) == 2


def test_a_measurement_that_raises_is_recorded_not_propagated():
    class _Breaks(_Fixed):
        name = "test-breaks"

        def compute_update(self, x, y, loss_fn):
            raise RuntimeError("batch of one not supported")

    network = _mlp((8,))
    rule = _bind(_Breaks(), network)
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.measure_point(0, 0)
    harness.measure_variance("final")
    harness.measure_fgsm()
    metrics, reasons = {}, {}
    harness.contribute(metrics, reasons, finished=True)
    assert metrics["gradient_bias"] is None and "RuntimeError: batch of one" in reasons["gradient_bias"]
    final = metrics["update_variance"]["final"]
    assert final["rule"] is None and "RuntimeError" in reasons["update_variance.final.rule"]
    assert final["backprop"]["snr"]["hidden"] is not None
