"""Gradient bias and update angle: how a rule's update compares with backprop's, layer by layer.

Updates are read from ``.grad`` of the plastic parameters (``layer.parameters()``
of every plastic layer that require a gradient) after ``rule.compute_update``;
the reference gradient is autograd's gradient of the task loss with every rule
override removed (``network.plain()``). Both are flattened per plastic layer
(parameters in ``layer.parameters()`` order: weight and bias together) into
:data:`LayerVectors`. While they are computed, the gradient that reaches each
plastic layer's output (the error signal the layer receives) is captured too
(:class:`OutputSignals`), for :class:`biobench.metrics.alignment.SignalAngle`.

The headline entry is ``hidden``: the mean over the hidden layers (every plastic
layer but the readout) of the per-layer cosines. Every feedback-pathway rule trains
the readout exactly, so a value over all layers at once (``overall``, kept in the
record) is dominated by the output layer and does not rank rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from biobench.metrics.base import (
    ANGLE,
    COSINE,
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
    per_layer_schema,
    scalar,
)
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


class OutputSignals:
    """The gradient that reaches each plastic layer's output during a backward pass, by layer name.

    While :meth:`capture` is active, every output of a plastic layer that takes part
    in autograd gets a hook adding its gradient here; a layer called once per time
    step gets the sum over its calls (the gradient with respect to an additive
    perturbation of its output that is constant in time), and an output with a
    leading time dimension (batch second) is summed over time. A layer whose
    outputs never received a gradient is absent.
    """

    def __init__(self) -> None:
        self.signals: dict[str, Tensor] = {}

    def _add(self, name: str, grad: Tensor) -> None:
        grad = grad.detach()
        if grad.dim() == 3:  # (time, batch, units) from a layer that handles time itself
            grad = grad.sum(0)
        current = self.signals.get(name)
        self.signals[name] = grad.clone() if current is None else current + grad

    @contextmanager
    def capture(self, network: Network) -> Iterator[OutputSignals]:
        """Hook every plastic layer's outputs for the duration."""

        def hook_for(name: str) -> Any:
            def forward_hook(module: nn.Module, args: Any, out: Any) -> None:
                if isinstance(out, Tensor) and out.requires_grad:
                    out.register_hook(lambda grad: self._add(name, grad))

            return forward_hook

        handles = [layer.register_forward_hook(hook_for(layer.layer_name)) for layer in network.layers]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def rule_update(
    network: Network, rule: LearningRule, task: Task, x: Tensor, y: Tensor, signals: OutputSignals | None = None
) -> LayerVectors:
    """The update ``rule.compute_update`` writes into ``.grad`` for batch ``(x, y)``, per plastic layer.

    Every ``.grad`` is cleared first; a parameter left without ``.grad`` counts as a
    zero update. The caller restores ``.grad`` (see :class:`TrainingState`). With
    ``signals``, the gradients reaching the layers' outputs are captured into it.
    """
    for p in _all_parameters(network, rule):
        p.grad = None
    with torch.enable_grad():
        if signals is None:
            rule.compute_update(x, y, task.loss)
        else:
            with signals.capture(network):
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


def reference_gradient(
    network: Network, task: Task, x: Tensor, y: Tensor, signals: OutputSignals | None = None
) -> LayerVectors:
    """Autograd's ``dL/dtheta`` of the task loss on ``(x, y)`` with every rule override removed.

    For spiking architectures autograd follows the architecture's own surrogate
    gradient through time (BPTT). ``.grad`` is not touched. With ``signals``,
    backprop's gradients with respect to the layers' outputs are captured into it.
    """
    require_reference(network)
    by_layer = plastic_parameters_by_layer(network)
    flat = [p for params in by_layer.values() for p in params]
    with network.plain(), torch.enable_grad():
        if signals is None:
            loss = task.loss(network(x), y)
        else:
            with signals.capture(network):
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
    """Every plastic layer but the last one in layer order (the readout); the only layer if there is one."""
    return names[:-1] if len(names) > 1 else list(names)


def hidden_mean(per_layer: dict[str, float | None], reasons: dict[str, str]) -> float | None:
    """Mean of the defined per-layer values over the hidden layers (null, with the reason, when none is)."""
    names = hidden_layers(list(per_layer))
    values = [per_layer[n] for n in names if per_layer[n] is not None]
    if not values:
        reasons["hidden"] = "no hidden layer has a defined value"
        return None
    return sum(values) / len(values)


def _cosine_entry(u: Tensor, g: Tensor, reasons: dict[str, str], path: str) -> float | None:
    try:
        return cosine(u, g)
    except MetricUndefined as exc:
        reasons[path] = f"{exc} (rule update |u| = {float(u.double().norm()):.3g}, reference |g| = {float(g.double().norm()):.3g})"
        return None


def hidden_entry(metrics: dict[str, Any], key: str) -> float | None:
    """The ``hidden`` entry of a per-layer metric of a record."""
    return scalar(metrics, key, "hidden")


class GradientBias(Metric):
    """Cosine similarity between a rule's update and the reference gradient, per layer, on the same weights and batch."""

    definition = MetricDefinition(
        keys=("gradient_bias", "gradient_bias_curve"),
        measures=(
            "how closely the update a rule writes into `.grad` points along the true gradient of the "
            "task loss, layer by layer, on the same weights and the same probe batch"
        ),
        formula=(
            "per plastic layer l: cos(u_l, g_l) = <u_l, g_l> / (‖u_l‖₂ ‖g_l‖₂), u_l the layer's weight "
            "and bias `.grad` after `rule.compute_update(x, y, task.loss)` on the probe batch (all `.grad` "
            "cleared first), g_l autograd's ∂L/∂θ_l of the same batch-mean task loss under "
            "`network.plain()` (surrogate-gradient BPTT for spiking nets; `gradient_reference` names the "
            "surrogate); `hidden` = mean of the per-layer cosines over the hidden layers (every plastic "
            "layer but the readout; the only layer of a one-layer network); `overall` = the cosine of all "
            "plastic parameters concatenated (dominated by the readout, which feedback-pathway rules train "
            "exactly; kept for reference, never a headline)"
        ),
        sign=(
            "both vectors in the descent convention (what the optimiser subtracts); +1: along the "
            "gradient (backprop), 0: orthogonal, −1: ascent direction"
        ),
        eps="none; computed in float64",
        averaging=(
            f"no average over measurements; the probe is the first {DEFAULT_SETTINGS.bias_examples} "
            "training examples, one batch (the batch-mean loss), network in training mode as during "
            "training; the raw update is compared, before the optimiser transforms it"
        ),
        unit="dimensionless, in [−1, 1]",
        when=(
            "before the first step and after every epoch (`gradient_bias_curve`: "
            "{epoch, step, hidden, overall, per_layer, reasons}); `gradient_bias` is the value after "
            "the last epoch"
        ),
        null_when=(
            "the architecture lacks the `differentiable` capability, either vector is all zero "
            "(e.g. a rule that leaves a layer untouched) or not finite, or training stopped early"
        ),
    )
    order = 10
    schemas = {
        "gradient_bias": per_layer_schema(COSINE, {"hidden": COSINE, "overall": COSINE}),
        "gradient_bias_curve": {"type": "array", "items": {"type": "object", "required": ["epoch", "step"]}},
    }
    columns = (
        Column(
            "gradient_bias_hidden", "Bias hidden (cos)",
            "gradient bias: cosine between the rule's update and backprop's, mean over the hidden layers",
            lambda m: hidden_entry(m, "gradient_bias"), order=30, tolerance=0.05, readme=True,
        ),
    )
    figures = (
        LayerBarsFigure(
            "gradient_bias", "bias_layers", "gradients", "Gradient bias per layer",
            "cosine to backprop gradient",
            "Mean over ok seeds at the end of training; measured by the harness on the same weights and "
            "batch as backprop.",
            ylim=(-1.05, 1.05),
        ),
        CurveFigure(
            "gradient_bias_curve", "hidden", "bias_curve", "gradients", "Gradient bias over training",
            "cosine to backprop gradient",
            "Mean over ok seeds; the first panel is the mean over hidden layers, then one panel per layer.",
            ylim=(-1.05, 1.05),
        ),
    )

    def compute(self, update: LayerVectors, reference: LayerVectors) -> Outcome:
        """Per-layer cosines, their mean over hidden layers, and the all-layer cosine."""
        names = list(reference)
        reasons: dict[str, str] = {}
        per_layer = {name: _cosine_entry(update[name], reference[name], reasons, f"per_layer.{name}") for name in names}
        overall = _cosine_entry(
            torch.cat([update[n] for n in names]), torch.cat([reference[n] for n in names]), reasons, "overall"
        )
        hidden = hidden_mean(per_layer, reasons)
        return Outcome({"hidden": hidden, "overall": overall, "per_layer": per_layer}, reasons)


class UpdateAngle(Metric):
    """The angle between a rule's update and the reference gradient per layer: arccos of the gradient bias."""

    definition = MetricDefinition(
        keys=("update_angle_deg",),
        measures=(
            "the angle between the rule's update and backprop's, per layer (what Akrout et al. 2019 plot "
            "as the 'delta angle'); `hidden` is the mean of the hidden layers' angles"
        ),
        formula="degrees(arccos(cos(u_l, g_l))) with cos(u_l, g_l) the `gradient_bias` entry of layer l",
        sign="0°: same direction as backprop, 90°: orthogonal, 180°: opposite (ascent)",
        eps="none",
        averaging="as `gradient_bias` (same probe, same layers); `hidden` is a mean of angles",
        unit="degrees, in [0, 180]",
        when="after the last epoch",
        null_when="the matching `gradient_bias` entry is null",
    )
    order = 20
    schemas = {"update_angle_deg": per_layer_schema(ANGLE, {"hidden": ANGLE, "overall": ANGLE})}

    def compute(self, bias: Outcome) -> Outcome:
        """Map every defined per-layer entry of a gradient-bias outcome through arccos, in degrees."""
        if bias.value is None:
            return Outcome(None, dict(bias.reasons))
        value = bias.value
        reasons = {k: v for k, v in bias.reasons.items() if k.startswith("per_layer") or k == "overall"}
        per_layer = {k: None if v is None else angle_deg(v) for k, v in value["per_layer"].items()}
        return Outcome(
            {
                "hidden": hidden_mean(per_layer, reasons),
                "overall": None if value["overall"] is None else angle_deg(value["overall"]),
                "per_layer": per_layer,
            },
            reasons,
        )


def per_example_rule_updates(
    network: Network, rule: LearningRule, task: Task, x: Tensor, y: Tensor, state: Any
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
