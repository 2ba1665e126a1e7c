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
from biobench.metrics.alignment import AlignmentAngle
from biobench.metrics.base import angle_deg, cosine
from biobench.metrics.gradients import (
    GradientBias,
    GradientSNR,
    UpdateAngle,
    per_example_reference_gradients,
    per_example_rule_updates,
    reference_gradient,
    rule_update,
)
from biobench.metrics.harness import HarnessMeasurements
from biobench.metrics.robustness import FGSMAccuracy, fgsm_examples
from biobench.metrics.state import TrainingState
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
    random_alignment = AlignmentAngle().compute(network, rule, task, data.train_x, data.train_y)
    assert 80.0 < random_alignment.value["mean"] < 100.0  # fixed random feedback at initialisation
    with torch.no_grad():
        for layer in network.layers[1:]:
            rule.feedback_matrix(layer).copy_(layer.forward_matrix())
    update = rule_update(network, rule, task, data.train_x, data.train_y)
    bias = GradientBias().compute(update, reference_gradient(network, task, data.train_x, data.train_y))
    assert bias.value["overall"] == pytest.approx(1.0, abs=1e-6)
    assert bias.value["hidden"] == pytest.approx(1.0, abs=1e-6)
    alignment = AlignmentAngle().compute(network, rule, task, data.train_x, data.train_y)
    assert alignment.value["per_layer"] == {"fc2": pytest.approx(0.0, abs=1e-3), "fc3": pytest.approx(0.0, abs=1e-3)}


def test_feedback_alignment_with_random_feedback_is_exact_only_at_the_output():
    bias, _ = _bias(_FeedbackAlignment, symmetric=False)
    # the readout's own gradient is local and exact; hidden layers get the random feedback
    assert bias.value["per_layer"]["fc3"] == pytest.approx(1.0, abs=1e-6)
    assert bias.value["per_layer"]["fc1"] < 0.5
    assert bias.value["hidden"] < 0.5


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


def test_a_single_layer_network_has_no_hidden_entry():
    bias, _ = _bias(Backprop, hidden=())
    assert bias.value["hidden"] is None and "single plastic layer" in bias.reasons["hidden"]
    assert bias.value["overall"] == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- gradient SNR


def test_snr_of_hand_computed_samples():
    samples = [{"a": torch.tensor([float(k), 0.0, 2.0])} for k in (1, 2, 3)]
    out = GradientSNR(eps=1e-8, ddof=1).compute(samples, 3)
    # element 0: mean 2, std (ddof 1) 1; element 1: zero for every example, left out;
    # element 2: constant 2, std 0
    expected = (2 / (1 + 1e-8) + 2 / 1e-8) / 2
    assert out.value["per_layer"]["a"] == pytest.approx(expected, rel=1e-6)
    assert out.value["overall"] == pytest.approx(expected, rel=1e-6)
    assert out.value["zero_elements"] == {"a": 1}
    assert out.value["hidden"] is None and "hidden" in out.reasons


def test_snr_averages_overall_over_elements_not_layers():
    samples = [{"a": torch.tensor([float(k)]), "b": torch.tensor([1.0, 1.0, 1.0])} for k in (1, 2, 3)]
    out = GradientSNR(eps=1e-8, ddof=0).compute(samples, 3)
    std_a = math.sqrt(2 / 3)  # ddof 0
    # statistics of float32 updates: relative error about 1e-7
    assert out.value["per_layer"]["a"] == pytest.approx(2 / (std_a + 1e-8), rel=1e-6)
    assert out.value["per_layer"]["b"] == pytest.approx(1e8, rel=1e-6)
    assert out.value["overall"] == pytest.approx((2 / (std_a + 1e-8) + 3e8) / 4, rel=1e-6)
    assert out.value["hidden"] == out.value["per_layer"]["a"]


def test_snr_of_all_zero_updates_is_null_with_a_reason():
    out = GradientSNR(eps=1e-8, ddof=1).compute([{"a": torch.zeros(4)} for _ in range(3)], 3)
    assert out.value["overall"] is None and "zero" in out.reasons["overall"]


def _rule_snr(kind: str, hidden=(64,)):
    network = _mlp(hidden)
    rule = _bind(_Fixed(kind=kind), network)
    data = _data(n_train=32)
    state = TrainingState(network, rule)
    samples = per_example_rule_updates(network, rule, _Digits(), data.train_x, data.train_y, state)
    out = GradientSNR(eps=1e-8, ddof=1).compute(samples, 32)
    state.restore()
    return out


def test_snr_of_a_constant_update_is_large():
    out = _rule_snr("constant")
    assert out.value["overall"] == pytest.approx(0.5 / 1e-8, rel=1e-6)


def test_snr_of_zero_mean_noise_is_near_zero():
    out = _rule_snr("noise")
    # |mean|/std of n Gaussian samples is |t_{n-1}| / sqrt(n); E|t_nu| in closed form
    n, nu = 32, 31
    e_abs_t = 2 * math.sqrt(nu) * math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / (
        math.sqrt(math.pi) * (nu - 1)
    )
    assert out.value["overall"] == pytest.approx(e_abs_t / math.sqrt(n), abs=0.005)
    assert out.value["overall"] < 0.16


def test_backprop_snr_matches_the_rule_snr_of_backprop():
    network = _mlp((16,))
    rule = _bind(Backprop(), network)
    data, task = _data(n_train=8), _Digits()
    snr = GradientSNR(eps=1e-8, ddof=1)
    state = TrainingState(network, rule)
    rule_out = snr.compute(per_example_rule_updates(network, rule, task, data.train_x, data.train_y, state), 8)
    state.restore()
    ref_out = snr.compute(per_example_reference_gradients(network, task, data.train_x, data.train_y), 8)
    assert rule_out.value["overall"] == pytest.approx(ref_out.value["overall"], rel=1e-9)
    ratio = GradientSNR.ratio(rule_out, ref_out)
    assert ratio.value["overall"] == pytest.approx(1.0, rel=1e-9)
    assert ratio.value["per_layer"]["fc1"] == pytest.approx(1.0, rel=1e-9)


# ---------------------------------------------------------------- alignment angle


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


def _alignment(network, matrices):
    rule = _bind(_GivenFeedback(matrices), network)
    data = _data()
    return AlignmentAngle().compute(network, rule, _Digits(), data.train_x, data.train_y)


def test_alignment_of_feedback_equal_opposite_and_orthogonal_to_the_forward_weights():
    network = _mlp((32, 16))
    w2, w3 = network.layers[1].weight.detach(), network.layers[2].weight.detach()
    r = torch.randn(w3.shape, generator=torch.Generator().manual_seed(3))
    orthogonal = r - (r * w3).sum() / (w3 * w3).sum() * w3  # Gram-Schmidt in the Frobenius product
    out = _alignment(network, {"fc2": -w2.clone(), "fc3": orthogonal})
    assert out.value["per_layer"]["fc2"] == pytest.approx(180.0, abs=1e-4)
    assert out.value["per_layer"]["fc3"] == pytest.approx(90.0, abs=1e-6)
    assert out.value["kind"] == {"fc2": "feedback_weights", "fc3": "feedback_weights"}
    assert out.value["mean"] == pytest.approx(135.0, abs=1e-4)
    same = _alignment(network, {"fc2": w2.clone()})
    assert same.value["per_layer"]["fc2"] == pytest.approx(0.0, abs=1e-4)


def test_direct_feedback_through_the_readout_weights_is_exactly_aligned():
    # one hidden layer: dL/dh = e W2, so a direct feedback matrix B = W2 gives 0 degrees
    network = _mlp((32,))
    w2 = network.layers[1].weight.detach().clone()
    assert w2.shape == (10, 32)  # (num_classes, out_features of fc1)
    out = _alignment(network, {"fc1": w2})
    assert out.value["kind"]["fc1"] == "direct_feedback_signal"
    assert out.value["per_layer"]["fc1"] == pytest.approx(0.0, abs=1e-3)
    opposite = _alignment(network, {"fc1": -w2})
    assert opposite.value["per_layer"]["fc1"] == pytest.approx(180.0, abs=1e-3)
    random = _alignment(network, {"fc1": torch.randn(10, 32, generator=torch.Generator().manual_seed(0))})
    assert 30.0 < random.value["per_layer"]["fc1"] < 150.0


def test_alignment_is_null_with_reasons_when_undefined():
    network = _mlp((32, 16))
    none = _alignment(network, {})
    assert none.value is None and "no feedback matrices" in none.reasons[""]
    bad = _alignment(network, {"fc2": torch.ones(3, 3), "nope": torch.ones(2, 2)})
    assert bad.value["per_layer"] == {"fc2": None, "nope": None}
    assert "matches neither" in bad.reasons["per_layer.fc2"]
    assert "no plastic layer" in bad.reasons["per_layer.nope"]
    assert bad.value["mean"] is None and "mean" in bad.reasons
    zero = _alignment(network, {"fc2": torch.zeros(16, 32)})
    assert zero.value["per_layer"]["fc2"] is None and "zero" in zero.reasons["per_layer.fc2"]


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
    assert out.value == {"0/255": 1.0, "40/255": 1.0, "50/255": 0.5, "150/255": 0.0}


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
    assert out.value[fgsm_key(0)] == clean
    assert out.value[fgsm_key(8)] <= clean


class _NotDifferentiable(MLP):
    name = "no-grad-mlp"
    capabilities = frozenset({"feedback", "dense"})


def test_metrics_needing_a_reference_are_null_without_the_differentiable_capability():
    network = _NotDifferentiable(hidden=[8]).build(784, 10, torch.Generator().manual_seed(0))
    rule = _bind(_Fixed(kind="noise"), network)
    harness = HarnessMeasurements(network, rule, _Digits(), _data(), seed=0)
    harness.measure_point(0, 0)
    harness.measure_final()
    metrics, reasons = {}, {}
    harness.contribute(metrics, reasons, finished=True)
    for key in ("gradient_bias", "gradient_bias_curve", "update_angle_deg", "gradient_snr_backprop",
                "gradient_snr_ratio_to_backprop", "fgsm_acc"):
        assert metrics[key] is None and "differentiable" in reasons[key], key
    assert metrics["gradient_snr"]["overall"] is not None  # the rule's own SNR needs no reference
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
    harness.measure_final()
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
    assert harness.bias_points[0][2].value["overall"] == pytest.approx(1.0, abs=1e-12)
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
            harness.measure_final()
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
    harness.measure_final()

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
    assert metrics["gradient_bias"]["overall"] == metrics["gradient_bias_curve"][-1]["overall"]
    assert metrics["alignment_angle_deg"]["kind"] == {"fc2": "feedback_weights"}
    assert 60.0 < metrics["alignment_angle_deg"]["per_layer"]["fc2"] < 120.0  # random feedback at init
    assert len(metrics["alignment_angle_curve"]) == 2
    assert set(metrics["fgsm_acc"]) == {"0/255", "4/255", "8/255", "12/255"}
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
    harness.measure_final()
    metrics, reasons = {}, {}
    harness.contribute(metrics, reasons, finished=True)
    assert metrics["gradient_bias"] is None and "RuntimeError: batch of one" in reasons["gradient_bias"]
    assert metrics["gradient_snr"] is None and metrics["gradient_snr_backprop"]["overall"] is not None
