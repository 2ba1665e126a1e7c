"""Gradient bias, update angle and gradient signal-to-noise ratio of a rule's updates.

Updates are read from ``.grad`` of the plastic parameters (``layer.parameters()``
of every plastic layer that require a gradient) after ``rule.compute_update``;
the reference gradient is autograd's gradient of the task loss with every rule
override removed (``network.plain()``). Both are flattened per plastic layer
(parameters in ``layer.parameters()`` order) into :data:`LayerVectors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from biobench.metrics.base import (
    DEFAULT_SETTINGS,
    Column,
    CurveFigure,
    LayerBarsFigure,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    angle_deg,
    cosine,
    finite_or_none,
    scalar,
)
from biobench.metrics.state import TrainingState
from biobench.plugin_api.capabilities import DIFFERENTIABLE, TIME
from biobench.plugin_api.interfaces import LearningRule, Network, Task

#: Flattened per-layer vectors, keyed by plastic-layer name, in layer order.
LayerVectors = dict[str, Tensor]

REFERENCE_CAPABILITY = DIFFERENTIABLE


def plastic_parameters_by_layer(network: Network) -> dict[str, list[nn.Parameter]]:
    """The trainable parameters of each plastic layer, keyed by layer name, in layer order."""
    return {
        layer.layer_name: [p for p in layer.parameters() if p.requires_grad] for layer in network.layers
    }


def _all_parameters(network: Network, rule: LearningRule) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for p in [*network.module.parameters(), *rule.parameters(), *network.plastic_parameters()]:
        seen.setdefault(id(p), p)
    return list(seen.values())


def _flatten(params: list[nn.Parameter], grads: Iterable[Tensor | None]) -> Tensor:
    parts = [
        (torch.zeros_like(p) if g is None else g).detach().reshape(-1)
        for p, g in zip(params, grads, strict=True)
    ]
    if not parts:
        return torch.zeros(0)
    return torch.cat(parts)  # a copy: later writes to .grad do not change it


def rule_update(network: Network, rule: LearningRule, task: Task, x: Tensor, y: Tensor) -> LayerVectors:
    """The update ``rule.compute_update`` writes into ``.grad`` for batch ``(x, y)``, per plastic layer.

    Every ``.grad`` is cleared first; a parameter left without ``.grad`` counts as a
    zero update. The caller restores ``.grad`` (see :class:`TrainingState`).
    """
    for p in _all_parameters(network, rule):
        p.grad = None
    with torch.enable_grad():
        rule.compute_update(x, y, task.loss)
    return {name: _flatten(params, [p.grad for p in params]) for name, params in plastic_parameters_by_layer(network).items()}


def require_reference(network: Network) -> None:
    """Raise :class:`MetricUndefined` unless the architecture has an autograd (or surrogate) gradient."""
    caps = network.architecture.capabilities
    if REFERENCE_CAPABILITY not in caps:
        raise MetricUndefined(
            f"architecture {network.architecture.name!r} does not provide the "
            f"{REFERENCE_CAPABILITY!r} capability, so there is no reference gradient"
        )


def reference_gradient(network: Network, task: Task, x: Tensor, y: Tensor) -> LayerVectors:
    """Autograd's ``dL/dtheta`` of the task loss on ``(x, y)`` with every rule override removed.

    For spiking architectures autograd follows the architecture's own surrogate
    gradient through time (BPTT). ``.grad`` is not touched.
    """
    require_reference(network)
    by_layer = plastic_parameters_by_layer(network)
    flat = [p for params in by_layer.values() for p in params]
    with network.plain(), torch.enable_grad():
        loss = task.loss(network(x), y)
        if not loss.requires_grad:
            raise MetricUndefined("the task loss does not depend on the parameters through autograd")
        grads = list(torch.autograd.grad(loss, flat, allow_unused=True))
    out: LayerVectors = {}
    for name, params in by_layer.items():
        out[name] = _flatten(params, grads[: len(params)])
        grads = grads[len(params) :]
    return out


def reference_description(network: Network) -> str:
    """How the reference gradient is computed for this architecture (stored in the record)."""
    arch = network.architecture
    if REFERENCE_CAPABILITY not in arch.capabilities:
        return f"none: architecture {arch.name!r} is not differentiable"
    if TIME not in arch.capabilities:
        return "autograd backprop of the task loss with rule overrides removed (network.plain())"
    named = {k: v for k, v in arch.config.items() if "surrogate" in k.lower()}
    surrogate = (
        ", ".join(f"{k}={v!r}" for k, v in sorted(named.items()))
        if named
        else "not named in the architecture config"
    )
    return f"surrogate-gradient backprop through time (network.plain()); surrogate: {surrogate}"


def hidden_layers(names: list[str]) -> list[str]:
    """Every plastic layer but the last one in layer order (the readout)."""
    return names[:-1]


def _cosine_entry(u: Tensor, g: Tensor, reasons: dict[str, str], path: str) -> float | None:
    try:
        return cosine(u, g)
    except MetricUndefined as exc:
        reasons[path] = f"{exc} (rule update |u| = {float(u.double().norm()):.3g}, reference |g| = {float(g.double().norm()):.3g})"
        return None


class GradientBias(Metric):
    """Cosine similarity between a rule's update and the reference gradient on the same weights and batch."""

    definition = MetricDefinition(
        keys=("gradient_bias", "gradient_bias_curve"),
        measures=(
            "how closely the update a rule writes into `.grad` points along the true gradient of the "
            "task loss, on the same weights and the same probe batch"
        ),
        formula=(
            "cos(u, g) = <u, g> / (‖u‖₂ ‖g‖₂); u = `.grad` of the plastic parameters after "
            "`rule.compute_update(x, y, task.loss)` on the probe batch, with all `.grad` cleared "
            "first; g = autograd's ∂L/∂θ of the same batch-mean task loss under `network.plain()` "
            "(surrogate-gradient BPTT for spiking nets; the record's `gradient_reference` names the "
            "surrogate); per plastic layer (its weight and bias concatenated), `hidden` (every plastic "
            "layer but the last, concatenated) and `overall` (all plastic parameters concatenated)"
        ),
        sign=(
            "both vectors in the descent convention (what the optimiser subtracts); +1: along the "
            "gradient (backprop), 0: orthogonal, −1: ascent direction"
        ),
        eps="none; computed in float64",
        averaging=(
            f"no average over measurements; the probe is the first {DEFAULT_SETTINGS.bias_examples} "
            "training examples, one batch "
            "(the batch-mean loss), network in training mode as during training; the raw update is "
            "compared, before the optimiser (Adam) transforms it"
        ),
        unit="dimensionless, in [−1, 1]",
        when=(
            "before the first step and after every epoch (`gradient_bias_curve`: "
            "{epoch, step, overall, hidden, per_layer, reasons}); `gradient_bias` is the value after "
            "the last epoch"
        ),
        null_when=(
            "the architecture lacks the `differentiable` capability, either vector is all zero "
            "(e.g. a rule that leaves a layer untouched) or not finite, or training stopped early"
        ),
    )

    order = 10
    columns = (
        Column(
            "gradient_bias", "Bias (cos)",
            "gradient bias: cosine between the rule's update and the backprop gradient",
            lambda m: scalar(m, "gradient_bias"), order=30, tolerance=0.05, readme=True,
        ),
    )
    figures = (
        LayerBarsFigure(
            "gradient_bias", "bias_layers", "gradients", "Gradient bias per layer",
            "cosine to backprop gradient",
            "Mean over ok seeds at the end of training; measured by the harness on the same weights and batch as backprop.",
            ylim=(-1.05, 1.05),
        ),
        CurveFigure(
            "gradient_bias_curve", "overall", "bias_curve", "gradients", "Gradient bias over training",
            "cosine to backprop gradient",
            "Mean over ok seeds; measured by the harness on the same weights and batch as backprop.",
            ylim=(-1.05, 1.05),
        ),
    )

    def compute(self, update: LayerVectors, reference: LayerVectors) -> Outcome:
        """Per-layer, hidden and overall cosine of ``update`` against ``reference``."""
        names = list(reference)
        reasons: dict[str, str] = {}
        per_layer = {name: _cosine_entry(update[name], reference[name], reasons, f"per_layer.{name}") for name in names}
        overall = _cosine_entry(
            torch.cat([update[n] for n in names]), torch.cat([reference[n] for n in names]), reasons, "overall"
        )
        hidden_names = hidden_layers(names)
        if hidden_names:
            hidden = _cosine_entry(
                torch.cat([update[n] for n in hidden_names]),
                torch.cat([reference[n] for n in hidden_names]),
                reasons,
                "hidden",
            )
        else:
            hidden = None
            reasons["hidden"] = "the network has a single plastic layer, so no hidden one"
        return Outcome({"overall": overall, "hidden": hidden, "per_layer": per_layer}, reasons)


class UpdateAngle(Metric):
    """The angle between a rule's update and the reference gradient: arccos of the gradient bias."""

    definition = MetricDefinition(
        keys=("update_angle_deg",),
        measures=(
            "the angle between the rule's update and backprop's (the reference gradient), per layer; "
            "the `hidden` entry is the angle of the hidden-layer update"
        ),
        formula="degrees(arccos(cos(u, g))) with cos(u, g) the `gradient_bias` entry of the same name",
        sign="0°: same direction as backprop, 90°: orthogonal, 180°: opposite (ascent)",
        eps="none",
        averaging="as `gradient_bias` (same probe, same concatenations)",
        unit="degrees, in [0, 180]",
        when="after the last epoch (the curve is arccos of `gradient_bias_curve`)",
        null_when="the matching `gradient_bias` entry is null",
    )

    order = 20

    def compute(self, bias: Outcome) -> Outcome:
        """Map every defined entry of a gradient-bias outcome through arccos, in degrees."""
        if bias.value is None:
            return Outcome(None, dict(bias.reasons))
        value = bias.value
        return Outcome(
            {
                "overall": None if value["overall"] is None else angle_deg(value["overall"]),
                "hidden": None if value["hidden"] is None else angle_deg(value["hidden"]),
                "per_layer": {k: None if v is None else angle_deg(v) for k, v in value["per_layer"].items()},
            },
            dict(bias.reasons),
        )


class _Samples:
    """Per-example update vectors of one layer, written into one preallocated (examples, elements) buffer."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0
        self.buffer: Tensor | None = None

    def add(self, x: Tensor) -> None:
        x = x.detach().reshape(-1)
        if self.buffer is None:
            self.buffer = torch.empty(self.capacity, x.numel(), dtype=x.dtype)
        if self.count == self.capacity:
            raise ValueError(f"more than the expected {self.capacity} examples")
        self.buffer[self.count].copy_(x)
        self.count += 1

    def elementwise_snr(self, eps: float, ddof: int) -> tuple[Tensor, Tensor]:
        """``|mean| / (std + eps)`` per element and the mask of elements not always zero.

        Mean and std are computed in the updates' dtype (float32: relative error
        about 1e-7) by the two-pass algorithm on data shifted by the first example,
        so an element that is the same for every example has a standard deviation
        of exactly 0; the ratio is computed in float64. An element is zero for
        every example exactly when its mean and its standard deviation are both 0.
        """
        assert self.buffer is not None
        rows = self.buffer[: self.count]
        shift = rows[0].clone()
        deviations = rows - shift
        shifted_mean = deviations.mean(0)
        deviations -= shifted_mean
        var = deviations.square_().sum(0) / (self.count - ddof)
        mean = shift.to(torch.float64) + shifted_mean.to(torch.float64)
        std = var.to(torch.float64).sqrt()
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise MetricUndefined("an update contains NaN or infinity")
        nonzero = (mean != 0) | (std != 0)
        return mean.abs() / (std + eps), nonzero


@dataclass
class _SNRSums:
    """Sum of elementwise SNRs over the used elements of one layer, and the element counts."""

    total: float = 0.0
    used: int = 0
    zero: int = 0
    problem: str | None = None

    @classmethod
    def of(cls, sample: _Samples, eps: float, ddof: int) -> _SNRSums:
        try:
            snr, nonzero = sample.elementwise_snr(eps, ddof)
        except MetricUndefined as exc:
            return cls(problem=str(exc))
        return cls(float(snr[nonzero].sum()), int(nonzero.sum()), int((~nonzero).sum()))


def _snr_mean(sums: list[_SNRSums]) -> tuple[float | None, str | None]:
    """Mean elementwise SNR over the used elements of several layers, or ``None`` and why."""
    for s in sums:
        if s.problem:
            return None, s.problem
    used = sum(s.used for s in sums)
    if used == 0:
        return None, "every update element is zero for every probe example"
    return finite_or_none(sum(s.total for s in sums) / used), None


class GradientSNR(Metric):
    """Signal-to-noise ratio of per-example updates at fixed weights (the rule's, or backprop's)."""

    definition = MetricDefinition(
        keys=("gradient_snr", "gradient_snr_backprop", "gradient_snr_ratio_to_backprop"),
        measures=(
            "how consistent the update is from one example to the next at fixed weights (high: low "
            "variance); `gradient_snr_backprop` is the same for autograd's per-example gradient on the "
            "same probe, `gradient_snr_ratio_to_backprop` the rule's value divided by backprop's"
        ),
        formula=(
            "u_i = update for the one-example batch {example i}, i = 1..N; per parameter element j: "
            "SNR_j = |mean_i u_ij| / (std_i u_ij + eps); `per_layer`, `hidden` and `overall` are the "
            "arithmetic means of SNR_j over the elements of the layer, of the hidden layers, of all "
            "plastic parameters, leaving out elements whose update is exactly zero for all N examples "
            "(0/0; their count is `zero_elements`)"
        ),
        sign="non-negative; larger means less variance relative to the mean update",
        eps=(
            f"{DEFAULT_SETTINGS.snr_eps:g} (units of the update); std with ddof = "
            f"{DEFAULT_SETTINGS.snr_ddof}; mean and std in the updates' dtype (float32), the ratio in float64"
        ),
        averaging=(
            f"over the N = {DEFAULT_SETTINGS.snr_examples} first training examples (one "
            "`compute_update` each, rule state restored "
            "between examples, its random generators left running so noise differs per example), "
            "then over parameter elements as above"
        ),
        unit="dimensionless",
        when="once, after the last epoch",
        null_when=(
            "every element is zero for every example, an update is not finite, the architecture lacks "
            "`differentiable` (backprop's SNR and the ratio), backprop's SNR is 0 (ratio), or "
            "training stopped early"
        ),
    )

    order = 30
    columns = (
        Column(
            "gradient_snr", "SNR", "gradient signal-to-noise ratio of the rule's update",
            lambda m: scalar(m, "gradient_snr"), order=40, digits=2, relative_tolerance=0.25,
        ),
        Column(
            "gradient_snr_ratio", "SNR / BP", "SNR relative to backprop's on the same weights",
            lambda m: scalar(m, "gradient_snr_ratio_to_backprop"), order=50, digits=2,
            relative_tolerance=0.25, readme=True,
        ),
    )
    figures = (
        LayerBarsFigure(
            "gradient_snr", "snr_layers", "gradients", "Gradient SNR per layer",
            "SNR (mean / std over examples)",
            "Mean over ok seeds at the end of training; dashed: backprop's SNR on the same weights.",
            reference_key="gradient_snr_backprop", log_scale=True,
        ),
    )

    def __init__(self, eps: float, ddof: int) -> None:
        self.eps, self.ddof = eps, ddof

    def compute(self, samples: Iterable[LayerVectors], count: int) -> Outcome:
        """SNR per layer, over hidden layers and overall, from ``count`` per-example update vectors."""
        moments: dict[str, _Samples] = {}
        for sample in samples:
            for name, vec in sample.items():
                moments.setdefault(name, _Samples(count)).add(vec)
        if not moments:
            return Outcome.undefined("no probe examples")
        count = next(iter(moments.values())).count
        if count - self.ddof < 1:
            return Outcome.undefined(f"{count} examples are too few for a standard deviation with ddof={self.ddof}")
        reasons: dict[str, str] = {}
        names = list(moments)
        per_layer: dict[str, float | None] = {}
        zero_elements: dict[str, int] = {}
        sums = {name: _SNRSums.of(moments[name], self.eps, self.ddof) for name in names}
        for name in names:
            per_layer[name], why = _snr_mean([sums[name]])
            zero_elements[name] = sums[name].zero
            if why:
                reasons[f"per_layer.{name}"] = why
        overall, why = _snr_mean([sums[n] for n in names])
        if why:
            reasons["overall"] = why
        hidden_names = hidden_layers(names)
        if hidden_names:
            hidden, why = _snr_mean([sums[n] for n in hidden_names])
            if why:
                reasons["hidden"] = why
        else:
            hidden = None
            reasons["hidden"] = "the network has a single plastic layer, so no hidden one"
        value = {"overall": overall, "hidden": hidden, "per_layer": per_layer, "zero_elements": zero_elements}
        return Outcome(value, reasons)

    @staticmethod
    def ratio(rule: Outcome, backprop: Outcome) -> Outcome:
        """``rule / backprop`` for every entry where both are defined and backprop's is positive."""
        if rule.value is None or backprop.value is None:
            why = rule.reasons.get("") or backprop.reasons.get("") or "undefined"
            return Outcome.undefined(f"needs both SNRs: {why}")
        reasons: dict[str, str] = {}

        def divide(path: str, a: float | None, b: float | None) -> float | None:
            if a is None or b is None:
                reasons[path] = "the rule's or backprop's SNR is null here"
                return None
            if b == 0:
                reasons[path] = "backprop's SNR is 0"
                return None
            return finite_or_none(a / b)

        value = {
            "overall": divide("overall", rule.value["overall"], backprop.value["overall"]),
            "hidden": divide("hidden", rule.value["hidden"], backprop.value["hidden"]),
            "per_layer": {
                name: divide(f"per_layer.{name}", rule.value["per_layer"].get(name), b)
                for name, b in backprop.value["per_layer"].items()
            },
        }
        return Outcome(value, reasons)


def per_example_rule_updates(
    network: Network, rule: LearningRule, task: Task, x: Tensor, y: Tensor, state: TrainingState
) -> Iterator[LayerVectors]:
    """The rule's update for each example alone, the rule's state restored before each one.

    Random generators keep running between examples, so a stochastic rule draws
    fresh noise for each example.
    """
    for i in range(len(x)):
        state.restore(random_state=False, modes=False)
        yield rule_update(network, rule, task, x[i : i + 1], y[i : i + 1])


def per_example_reference_gradients(network: Network, task: Task, x: Tensor, y: Tensor) -> Iterator[LayerVectors]:
    """Autograd's gradient for each example alone (see :func:`reference_gradient`)."""
    for i in range(len(x)):
        yield reference_gradient(network, task, x[i : i + 1], y[i : i + 1])


def outcome_or_reason(fn: Any, *args: Any, **kwargs: Any) -> Outcome:
    """Call ``fn``; a :class:`MetricUndefined` becomes a null outcome with its message."""
    try:
        return fn(*args, **kwargs)
    except MetricUndefined as exc:
        return Outcome.undefined(str(exc))
