"""Alignment angle between a rule's feedback pathway and the forward weights backprop would transport."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench.metrics.base import (
    DEFAULT_SETTINGS,
    Column,
    CurveFigure,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    angle_deg,
    cosine,
    scalar,
)
from biobench.metrics.gradients import require_reference
from biobench.plugin_api.interfaces import LearningRule, Network, Task
from biobench.plugin_api.layers import PlasticLayer

KIND_WEIGHTS = "feedback_weights"
KIND_DIRECT_SIGNAL = "direct_feedback_signal"


def output_error_and_layer_gradients(
    network: Network, task: Task, x: Tensor, y: Tensor, layers: list[PlasticLayer]
) -> tuple[Tensor, dict[str, Tensor | None]]:
    """``e = dL/dlogits`` and, per layer, ``dL/dh`` of the layer's output, by autograd in plain mode.

    A layer called several times per forward pass (once per time step) gets the
    sum of the gradients over its calls: the gradient of the loss with respect to
    an additive perturbation of its output that is constant in time.
    """
    require_reference(network)
    outputs: dict[str, list[Tensor]] = {layer.layer_name: [] for layer in layers}
    handles = [
        layer.register_forward_hook(lambda module, args, out, name=layer.layer_name: outputs[name].append(out))
        for layer in layers
    ]
    try:
        with network.plain(), torch.enable_grad():
            logits = network(x)
            loss = task.loss(logits, y)
    finally:
        for handle in handles:
            handle.remove()
    if not logits.requires_grad:
        raise MetricUndefined("the logits do not depend on the parameters through autograd")
    targets: list[Tensor] = [logits]
    index: list[tuple[str, int]] = []
    for name, outs in outputs.items():
        for i, out in enumerate(outs):
            if isinstance(out, Tensor) and out.requires_grad:
                targets.append(out)
                index.append((name, i))
    grads = torch.autograd.grad(loss, targets, allow_unused=True)
    error = grads[0]
    if error is None:
        raise MetricUndefined("the loss has no gradient with respect to the logits")
    per_layer: dict[str, Tensor | None] = {name: None for name in outputs}
    for (name, _), grad in zip(index, grads[1:], strict=True):
        if grad is None:
            continue
        if grad.dim() == 3:  # (time, batch, units) from a layer that handles time itself
            grad = grad.sum(0)
        current = per_layer[name]
        per_layer[name] = grad.detach() if current is None else current + grad.detach()
    return error.detach(), per_layer


class AlignmentAngle(Metric):
    """Angle between each feedback matrix of a rule and the forward pathway backprop would use."""

    definition = MetricDefinition(
        keys=("alignment_angle_deg", "alignment_angle_curve"),
        measures=(
            "how far each feedback matrix B_l of `rule.feedback_weights()` is from what backprop "
            "transports; `kind` says which of two definitions applies to the layer"
        ),
        formula=(
            "`feedback_weights` (B_l has the shape of `layer.forward_matrix()` W_l, as in feedback "
            "alignment, sign symmetry, Kolen-Pollack): degrees(arccos(cos(vec B_l, vec W_l))). "
            "`direct_feedback_signal` (B_l has shape (num_classes, out_features), as in direct "
            "feedback alignment): degrees(arccos(cos(e B_l, ∂L/∂h_l))) over the probe batch "
            "flattened, with e = ∂L/∂logits and h_l the layer's output (summed over time steps for "
            "spiking layers), both by autograd under `network.plain()` on the "
            f"{DEFAULT_SETTINGS.bias_examples}-example probe. "
            "`mean` is the arithmetic mean of the defined per-layer angles"
        ),
        sign=(
            "0°: feedback equals what backprop transports, 90°: unrelated, 180°: opposite; the "
            "feedback matrix is used as the rule returns it (feedback = g_out B_l)"
        ),
        eps="none; computed in float64",
        averaging=(
            "none over time; per layer; the direct-feedback angle is over all probe examples and "
            "units at once"
        ),
        unit="degrees, in [0, 180]",
        when=(
            "before the first step and after every epoch (`alignment_angle_curve`: {epoch, step, "
            "mean, per_layer, kind, reasons}); `alignment_angle_deg` ({mean, per_layer, kind}) is the "
            "value after the last epoch"
        ),
        null_when=(
            "the rule has no feedback matrices (e.g. backprop, which transports W itself), a matrix "
            "has neither shape, is all zero, or names no plastic layer, the direct-feedback angle on "
            "a non-differentiable architecture, or training stopped early"
        ),
    )

    order = 40
    columns = (
        Column(
            "alignment_angle_deg", "Align. (°)", "angle between feedback and forward weights, where defined",
            lambda m: scalar(m, "alignment_angle_deg", "mean"), order=70, digits=1, tolerance=3.0,
        ),
    )
    figures = (
        CurveFigure(
            "alignment_angle_curve", "mean", "alignment_curve", "alignment", "Alignment angle over training",
            "angle (degrees)",
            "Angle between each rule's feedback weights and the forward weights; rules without feedback "
            "weights have none.",
            ylim=(0, 180),
        ),
    )

    def compute(self, network: Network, rule: LearningRule, task: Task, x: Tensor, y: Tensor) -> Outcome:
        """Per-layer angles (and their kinds) for the rule's current feedback matrices."""
        feedback = rule.feedback_weights()
        if not feedback:
            return Outcome.undefined(
                f"rule {rule.name!r} has no feedback matrices (feedback_weights() is empty)"
            )
        layers = {layer.layer_name: layer for layer in network.layers}
        num_classes = int(task.num_classes)
        reasons: dict[str, str] = {}
        per_layer: dict[str, float | None] = {}
        kind: dict[str, str | None] = {}
        direct: list[str] = []
        for name, matrix in feedback.items():
            layer = layers.get(name)
            if layer is None:
                per_layer[name], kind[name] = None, None
                reasons[f"per_layer.{name}"] = f"no plastic layer is called {name!r}; layers: {sorted(layers)}"
                continue
            forward = layer.forward_matrix().detach()
            if tuple(matrix.shape) == tuple(forward.shape):
                kind[name] = KIND_WEIGHTS
                try:
                    per_layer[name] = angle_deg(cosine(matrix, forward))
                except MetricUndefined as exc:
                    per_layer[name] = None
                    reasons[f"per_layer.{name}"] = f"feedback vs forward matrix: {exc}"
            elif tuple(matrix.shape) == (num_classes, layer.out_features):
                kind[name] = KIND_DIRECT_SIGNAL
                direct.append(name)
            else:
                per_layer[name], kind[name] = None, None
                reasons[f"per_layer.{name}"] = (
                    f"feedback matrix shape {tuple(matrix.shape)} matches neither the forward matrix "
                    f"{tuple(forward.shape)} nor (num_classes, out_features) = ({num_classes}, {layer.out_features})"
                )
        if direct:
            try:
                error, grads = output_error_and_layer_gradients(network, task, x, y, [layers[n] for n in direct])
            except MetricUndefined as exc:
                error, grads = None, {}
                for name in direct:
                    reasons[f"per_layer.{name}"] = f"direct feedback signal: {exc}"
            for name in direct:
                per_layer[name] = None
                if error is None:
                    continue
                grad = grads.get(name)
                if grad is None:
                    reasons[f"per_layer.{name}"] = "the loss has no gradient with respect to this layer's output"
                    continue
                signal = error.to(feedback[name].dtype) @ feedback[name].detach()
                if signal.shape != grad.shape:
                    reasons[f"per_layer.{name}"] = (
                        f"direct feedback signal shape {tuple(signal.shape)} differs from the layer "
                        f"output gradient {tuple(grad.shape)}"
                    )
                    continue
                try:
                    per_layer[name] = angle_deg(cosine(signal, grad))
                except MetricUndefined as exc:
                    reasons[f"per_layer.{name}"] = f"direct feedback signal vs backprop's: {exc}"
        defined = [v for v in per_layer.values() if v is not None]
        mean = sum(defined) / len(defined) if defined else None
        if mean is None:
            reasons["mean"] = "no layer has a defined alignment angle"
        return Outcome({"mean": mean, "per_layer": per_layer, "kind": kind}, reasons)
