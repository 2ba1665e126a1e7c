"""Alignment, two definitions that never share a column.

:class:`FeedbackAngle`: the angle between a rule's feedback matrix ``B_l`` and the
forward matrix ``W_l`` that backprop would transport (feedback alignment, sign
symmetry, Kolen-Pollack, weight mirrors: matrices of ``W_l``'s shape).

:class:`SignalAngle`: the angle between the error signal a layer actually receives
during the rule's update (the gradient that reaches the layer's output in the
rule's backward pass, whatever carries it: transported weights, feedback matrices,
direct projections of the error or of the target) and the signal backprop sends it
(``∂L/∂h_l``), on the same weights and probe batch. It applies to every rule that
sends a signal through autograd, direct feedback alignment and target projection
included; it is undefined for rules that send none (perturbation, Hebbian).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from biobench.metrics.base import (
    ANGLE,
    DEFAULT_SETTINGS,
    Column,
    CurveFigure,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    angle_deg,
    cosine,
    per_layer_schema,
    scalar,
)
from biobench.metrics.gradients import OutputSignals, hidden_entry, hidden_mean
from biobench.plugin_api.accelerators import on_accelerator
from biobench.plugin_api.interfaces import LearningRule, Network

_CURVE = {"type": "array", "items": {"type": "object", "required": ["epoch", "step"]}}


class FeedbackAngle(Metric):
    """Angle between each feedback matrix of a rule and the forward matrix backprop would transport."""

    definition = MetricDefinition(
        keys=("feedback_angle_deg", "feedback_angle_curve"),
        measures=(
            "how far each feedback matrix B_l of `rule.feedback_weights()` (of the shape of the layer's "
            "forward matrix W_l) is from W_l, which backprop transports"
        ),
        formula=(
            "degrees(arccos(cos(vec B_l, vec W_l))), W_l = `layer.forward_matrix()`; `mean` = mean over the "
            "layers that have a feedback matrix (a feedback matrix carries the error into a hidden layer, so "
            "every one counts)"
        ),
        sign="0°: feedback equals the transported weights, 90°: unrelated, 180°: opposite",
        eps="none; computed in float64",
        averaging="none over time; per layer",
        unit="degrees, in [0, 180]",
        when=(
            "before the first step and after every epoch (`feedback_angle_curve`: {epoch, step, mean, "
            "per_layer, reasons}); `feedback_angle_deg` is the value after the last epoch"
        ),
        null_when=(
            "the rule has no feedback matrix of a forward matrix's shape (backprop, which transports W "
            "itself; direct feedback alignment, whose matrices project the output error: see "
            "`signal_angle_deg`), a matrix is all zero, or training stopped early"
        ),
    )
    order = 40
    schemas = {
        "feedback_angle_deg": per_layer_schema(ANGLE, {"mean": ANGLE}),
        "feedback_angle_curve": _CURVE,
    }
    columns = (
        Column(
            "feedback_angle_deg", "Feedback ∠ (°)",
            "angle between the rule's feedback matrices and the forward weights, mean over layers",
            lambda m: _entry(m, "feedback_angle_deg", "mean"), order=70, digits=1, tolerance=3.0, readme=True,
        ),
    )
    figures = (
        CurveFigure(
            "feedback_angle_curve", "mean", "feedback_angle_curve", "alignment", "Feedback-weight angle over training",
            "angle B vs W (degrees)",
            "Angle between each rule's feedback matrices and the forward weights; rules without feedback "
            "matrices of the forward weights' shape have none.",
            ylim=(0, 180),
        ),
    )

    def compute(self, network: Network, rule: LearningRule) -> Outcome:
        """Per-layer angles of the rule's current feedback matrices that have the forward matrix's shape."""
        feedback = rule.feedback_weights()
        layers = {layer.layer_name: layer for layer in network.layers}
        reasons: dict[str, str] = {}
        per_layer: dict[str, float | None] = {}
        for name, matrix in feedback.items():
            layer = layers.get(name)
            if layer is None:
                continue
            forward = layer.forward_matrix().detach()
            if tuple(matrix.shape) != tuple(forward.shape):
                continue
            try:
                per_layer[name] = angle_deg(cosine(matrix, forward))
            except MetricUndefined as exc:
                per_layer[name] = None
                reasons[f"per_layer.{name}"] = f"feedback vs forward matrix: {exc}"
        if not per_layer:
            return Outcome.undefined(
                f"rule {rule.name!r} has no feedback matrix of a forward matrix's shape "
                "(see signal_angle_deg for the signal it sends)"
            )
        defined = [v for v in per_layer.values() if v is not None]
        mean = sum(defined) / len(defined) if defined else None
        if mean is None:
            reasons["mean"] = "no layer has a defined angle"
        return Outcome({"mean": mean, "per_layer": per_layer}, reasons)


class SignalAngle(Metric):
    """Angle between the error signal a layer receives in the rule's update and the one backprop sends it."""

    definition = MetricDefinition(
        keys=("signal_angle_deg", "signal_angle_curve"),
        measures=(
            "how far the error signal each layer receives during the rule's update is from backprop's, "
            "measured on what the rule actually sends (through transported weights, feedback matrices, "
            "direct projections of the error or of the target)"
        ),
        formula=(
            "degrees(arccos(cos(δ_l, ∂L/∂h_l))) over the probe batch flattened; δ_l = the gradient reaching "
            "layer l's output h_l in the rule's backward pass of `compute_update`, ∂L/∂h_l = autograd's "
            "under `network.plain()` (both summed over time steps for spiking layers); `hidden` = mean over "
            "the hidden layers (the readout receives the output error itself from every rule that sends one); "
            "`per_example`: the same angle example by example (a probe batch of one, as Akrout et al. 2019 "
            "measure it), averaged over the probe examples whose two signals are non-zero"
        ),
        sign="0°: the signal backprop sends, 90°: unrelated, 180°: opposite",
        eps="none; computed in float64",
        averaging=(
            f"none over time; per layer, over all {DEFAULT_SETTINGS.bias_examples} probe examples and units "
            "at once; measured in the same passes as `gradient_bias`"
        ),
        unit="degrees, in [0, 180]",
        when=(
            "before the first step and after every epoch (`signal_angle_curve`: {epoch, step, hidden, "
            "per_layer, per_example, reasons}); `signal_angle_deg` is the value after the last epoch"
        ),
        null_when=(
            "the rule sends a layer no signal through autograd (perturbation and Hebbian rules compute "
            "their updates without a backward pass), the architecture lacks `differentiable`, a signal is "
            "zero, or training stopped early"
        ),
    )
    order = 45
    schemas = {
        "signal_angle_deg": per_layer_schema(
            ANGLE, {"hidden": ANGLE, "per_example": per_layer_schema(ANGLE, {"hidden": ANGLE})}
        ),
        "signal_angle_curve": _CURVE,
    }
    columns = (
        Column(
            "signal_angle_deg", "Signal ∠ (°)",
            "angle between the error signal the hidden layers receive and backprop's, mean over hidden layers",
            lambda m: hidden_entry(m, "signal_angle_deg"), order=75, digits=1, tolerance=3.0, readme=True,
        ),
    )
    figures = (
        CurveFigure(
            "signal_angle_curve", "hidden", "signal_angle_curve", "alignment", "Error-signal angle over training",
            "angle to backprop's signal (degrees)",
            "Angle between the error signal each layer receives in the rule's update and backprop's; the first "
            "panel is the mean over hidden layers.",
            ylim=(0, 180),
        ),
    )

    def compute(self, network: Network, rule_signals: OutputSignals, reference_signals: OutputSignals) -> Outcome:
        """Per-layer angles between the captured signals of the rule and of backprop."""
        names = [layer.layer_name for layer in network.layers]
        reasons: dict[str, str] = {}
        per_layer: dict[str, float | None] = {}
        per_example: dict[str, float | None] = {name: None for name in names}
        example_reasons: dict[str, str] = {}
        for name in names:
            ours: Tensor | None = rule_signals.signals.get(name)
            theirs: Tensor | None = reference_signals.signals.get(name)
            per_layer[name] = None
            if ours is None:
                reasons[f"per_layer.{name}"] = "the rule sends this layer no signal through autograd"
                continue
            if theirs is None:
                reasons[f"per_layer.{name}"] = "backprop sends this layer no signal (its output is not on the loss's path)"
                continue
            if ours.shape != theirs.shape:
                reasons[f"per_layer.{name}"] = f"signal shapes differ: {tuple(ours.shape)} vs {tuple(theirs.shape)}"
                continue
            try:
                per_layer[name] = angle_deg(cosine(ours, theirs))
            except MetricUndefined as exc:
                reasons[f"per_layer.{name}"] = f"rule's signal vs backprop's: {exc}"
            per_example[name] = mean_example_angle(ours, theirs)
            if per_example[name] is None:
                example_reasons[f"per_layer.{name}"] = "no probe example has two non-zero, finite signals"
        if all(v is None for v in per_layer.values()):
            first = reasons.get(f"per_layer.{names[0]}", "undefined") if names else "no plastic layer"
            return Outcome.undefined(first)
        hidden = hidden_mean(per_layer, reasons)
        example_hidden = hidden_mean(per_example, example_reasons)
        reasons.update({f"per_example.{k}": v for k, v in example_reasons.items()})
        return Outcome(
            {"hidden": hidden, "per_layer": per_layer, "per_example": {"hidden": example_hidden, "per_layer": per_example}},
            reasons,
        )


def mean_example_angle(ours: Tensor, theirs: Tensor) -> float | None:
    """Mean over examples (the first axis) of the angle between two signals, in degrees, float64.

    Examples where either signal is zero or not finite are left out; None when none is left.
    On an accelerator the examples left out are masked instead of removed (removing them
    would wait for the device) and the mean is read once; the numbers agree with the
    CPU's up to the order of the final sum.
    """
    u = ours.detach().reshape(len(ours), -1).to(torch.float64)
    g = theirs.detach().reshape(len(theirs), -1).to(torch.float64)
    nu, ng = torch.linalg.vector_norm(u, dim=1), torch.linalg.vector_norm(g, dim=1)
    keep = (nu > 0) & (ng > 0) & torch.isfinite(u).all(1) & torch.isfinite(g).all(1)
    if on_accelerator(u.device):
        return _masked_mean_example_angle(u, g, nu * ng, keep)
    if not bool(keep.any()):
        return None
    cos = ((u[keep] * g[keep]).sum(1) / (nu[keep] * ng[keep])).clamp(-1.0, 1.0)
    return float(torch.rad2deg(torch.arccos(cos)).mean())


def _masked_mean_example_angle(u: Tensor, g: Tensor, norms: Tensor, keep: Tensor) -> float | None:
    """:func:`mean_example_angle` without removing examples: the ones not kept count zero, the mean divides by the kept count."""
    cos = torch.where(keep, (u * g).sum(1) / torch.where(keep, norms, 1.0), 0.0).clamp(-1.0, 1.0)
    angles = torch.where(keep, torch.rad2deg(torch.arccos(cos)), 0.0)
    mean = float(angles.sum() / keep.sum())  # 0 / 0 when no example is kept
    return None if math.isnan(mean) else mean


def _entry(metrics: dict[str, Any], key: str, entry: str) -> float | None:
    return scalar(metrics, key, entry)
