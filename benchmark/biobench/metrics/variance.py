"""Gradient variance: how consistent a rule's update is from one example to the next, against backprop's.

For each plastic layer the per-example updates u_1..u_N (weight and bias together,
one ``compute_update`` on each example alone, at fixed weights) give

    m   = (1/N) Σ u_i                                    mean update
    s²  = 1/(N−1) Σ ‖u_i − m‖²                           unbiased estimate of tr Cov(u)
    S   = max(‖m‖² − s²/N, 0)                            positive-part unbiased estimate of ‖E u‖²
    SNR = S / s²                                         signal-to-noise ratio of the update vector
    RV  = s² / S                                         relative variance tr Cov(u) / ‖E u‖²

(``E‖m‖² = ‖E u‖² + tr Cov(u)/N``, hence the correction.) Both are finite by
construction: SNR is null only when every example gives the same update (s² = 0:
no variance at all), RV only when the mean update is indistinguishable from zero
(S = 0). The same quantities are computed for backprop's per-example gradients on
the same examples and the same elements, and SNR / SNR_backprop per layer says how
much noisier (< 1) or steadier (> 1) the rule is. They are measured at two fixed
points: before training (every rule of an architecture starts from the same weights
for a given seed, so this point compares estimators on identical weights) and after
the last epoch.

**Noise floor.** For zero-mean isotropic noise in d dimensions the estimate of SNR
has mean 0 and standard deviation ``sqrt(2/d) / N``; that value is recorded per
layer (``noise_floor``), and an SNR within a few floors of 0 means "no detectable
mean update". With N = 32 the floor is 1e-4 for a 784-256 layer and 9e-4 for a
256-10 readout; backprop's measured SNR is in every record beside it (README,
Metrics, gives the range measured on the published leaderboard).

The element-wise SNR of earlier versions (mean over elements of |mean|/(std + eps))
was ill-conditioned (1/eps for elements that are constant across examples) and sat
at its noise floor for most rules; it is no longer computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from biobench.metrics.base import (
    DEFAULT_SETTINGS,
    NONNEGATIVE,
    Column,
    LayerBarsFigure,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    nullable,
    number,
)
from biobench.metrics.gradients import LayerVectors, hidden_layers

POINTS = ("initial", "final")


def layer_statistics(rows: Tensor) -> dict[str, Any]:
    """SNR, relative variance and their parts for one layer's per-example updates ``rows`` (N, d).

    Sums are accumulated in float64 on data shifted by the first example, so an
    update that is the same for every example has a variance of exactly 0.
    """
    n, d = rows.shape
    if n < 2:
        raise MetricUndefined(f"{n} example(s): a variance needs at least 2")
    shift = rows[0]
    deviations = rows - shift
    shifted_mean = deviations.mean(0)
    deviations -= shifted_mean
    noise = float(torch.linalg.vector_norm(deviations, dtype=torch.float64) ** 2) / (n - 1)
    mean = shift.to(torch.float64) + shifted_mean.to(torch.float64)
    mean_sq = float(mean.dot(mean))
    if not (math.isfinite(noise) and math.isfinite(mean_sq)):
        raise MetricUndefined("an update contains NaN or infinity")
    if noise == 0.0 and mean_sq == 0.0:
        raise MetricUndefined("every example's update of this layer is zero")
    signal = max(mean_sq - noise / n, 0.0)
    return {
        "snr": None if noise == 0.0 else signal / noise,
        "relative_variance": None if signal == 0.0 else noise / signal,
        "signal": signal,
        "noise": noise,
        "noise_floor": math.sqrt(2.0 / d) / n,
        "elements": d,
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


_SIDE = {
    "type": "object",
    "properties": {
        "snr": {"type": "object", "properties": {"hidden": nullable(NONNEGATIVE)}},
        "relative_variance": {"type": "object", "properties": {"hidden": nullable(NONNEGATIVE)}},
    },
}
_POINT = {
    "type": "object",
    "properties": {
        "rule": nullable(_SIDE),
        "backprop": nullable(_SIDE),
        "snr_ratio": nullable({"type": "object", "properties": {"hidden": nullable(NONNEGATIVE)}}),
    },
}
_SCHEMA = {
    "type": "object",
    "properties": {"examples": {"type": "integer", "minimum": 2}, **{p: nullable(_POINT) for p in POINTS}},
}


class UpdateVariance(Metric):
    """Signal-to-noise ratio and relative variance of the per-example update vector, per layer, against backprop's."""

    definition = MetricDefinition(
        keys=("update_variance",),
        measures=(
            "how consistent the update is from one example to the next at fixed weights, per layer, for the "
            "rule and for backprop on the same examples (high SNR, low relative variance: a steadier update)"
        ),
        formula=(
            "u_i = the layer's update (weight and bias) for example i alone, i = 1..N; m = mean u_i; "
            "s² = Σ‖u_i − m‖²/(N−1); S = max(‖m‖² − s²/N, 0); `snr` = S/s², `relative_variance` = s²/S; "
            "`snr_ratio` = rule's snr / backprop's snr per layer; `hidden` entries are means over the "
            "hidden layers (all plastic layers but the readout)"
        ),
        sign="snr ≥ 0 (higher: less variance relative to the mean update); snr_ratio < 1: noisier than backprop",
        eps=(
            "none; float64; noise floor of `snr` (std of the estimate under zero-mean noise) = sqrt(2/d)/N "
            "per layer of d elements, recorded as `noise_floor`"
        ),
        averaging=(
            f"over the N = {DEFAULT_SETTINGS.snr_examples} first training examples, one `compute_update` "
            "each (rule state restored between examples, its random generators left running so noise "
            "differs per example), then over the layer's elements as vectors"
        ),
        unit="dimensionless",
        when=(
            "twice: `initial` before the first step (the same weights for every rule of an architecture and "
            "seed) and `final` after the last epoch"
        ),
        null_when=(
            "every example's update of a layer is zero (all entries), every example gives the same update "
            "(snr: zero variance), the mean update is indistinguishable from zero (relative_variance), "
            "backprop's snr of the layer is within its noise floor (the ratio: no detectable mean update to "
            "compare with, as for a trained network near a minimum), the "
            "architecture lacks `differentiable` (backprop's side and the ratio), or training stopped early "
            "(`final`)"
        ),
    )
    order = 30
    schemas = {"update_variance": _SCHEMA}
    figures = tuple(
        LayerBarsFigure(
            "update_variance", f"snr_ratio_{point}", "gradients",
            f"Update SNR relative to backprop per layer ({'before training' if point == 'initial' else 'at the end'})",
            "SNR / backprop's SNR",
            "Mean over ok seeds; the rule's per-example update signal-to-noise ratio over backprop's on the same "
            "weights and examples (dotted: 1, backprop itself). Log scale.",
            path=(point, "snr_ratio"), log_scale=True, reference_line=1.0,
        )
        for point in POINTS
    )
    columns = (
        Column(
            "snr_ratio_initial", "SNR / BP (init)",
            "update signal-to-noise ratio over backprop's on the same initial weights and examples, mean over "
            "hidden layers (< 1: noisier than backprop)",
            lambda m: ratio_entry(m, "initial"), order=50, digits=2, relative_tolerance=0.25, readme=True,
        ),
        Column(
            "snr_ratio_final", "SNR / BP (end)",
            "the same ratio at the final weights of the run",
            lambda m: ratio_entry(m, "final"), order=52, digits=2, relative_tolerance=0.25,
        ),
    )

    def side(self, samples: Iterable[LayerVectors]) -> Outcome:
        """SNR and relative variance per layer (and their hidden means) from per-example update vectors."""
        rows: dict[str, list[Tensor]] = {}
        for sample in samples:
            for name, vector in sample.items():
                rows.setdefault(name, []).append(vector.detach().reshape(-1))
        if not rows:
            return Outcome.undefined("no probe examples")
        reasons: dict[str, str] = {}
        layers: dict[str, dict[str, Any] | None] = {}
        for name, vectors in rows.items():
            try:
                layers[name] = layer_statistics(torch.stack(vectors).to(torch.float32))
            except MetricUndefined as exc:
                layers[name] = None
                reasons[f"per_layer.{name}"] = str(exc)
        names = list(rows)
        hidden = hidden_layers(names)
        value: dict[str, Any] = {"per_layer": layers}
        for quantity in ("snr", "relative_variance"):
            values = [layers[n][quantity] if layers[n] else None for n in hidden]
            value[quantity] = {"hidden": _mean(values)}
            if value[quantity]["hidden"] is None:
                reasons[f"{quantity}.hidden"] = f"no hidden layer has a defined {quantity}"
        return Outcome(value, reasons)

    @staticmethod
    def ratio(rule: Outcome, backprop: Outcome) -> Outcome:
        """``rule snr / backprop snr`` per layer where both are defined and backprop's is positive."""
        if rule.value is None or backprop.value is None:
            why = rule.reasons.get("") or backprop.reasons.get("") or "undefined"
            return Outcome.undefined(f"needs both sides: {why}")
        reasons: dict[str, str] = {}
        per_layer: dict[str, float | None] = {}
        for name, theirs in backprop.value["per_layer"].items():
            per_layer[name], why = layer_ratio(rule.value["per_layer"].get(name), theirs)
            if why:
                reasons[f"per_layer.{name}"] = why
        hidden = _mean([per_layer[n] for n in hidden_layers(list(per_layer))])
        if hidden is None:
            reasons["hidden"] = "no hidden layer has a defined ratio"
        return Outcome({"per_layer": per_layer, "hidden": hidden}, reasons)


def layer_ratio(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> tuple[float | None, str]:
    """``(rule snr / backprop snr, "")`` of one layer, or ``(None, why)``.

    Defined only where backprop's SNR is above its noise floor: below it backprop's mean
    update is not detectable (a trained network near a minimum), and dividing by an
    estimate of zero gives ratios of 1e5 and more that say nothing about the rule.
    """
    a = None if ours is None else ours.get("snr")
    b = None if theirs is None else theirs.get("snr")
    if a is None or b is None or b == 0:
        return None, "the rule's or backprop's SNR is undefined or zero here"
    floor = theirs.get("noise_floor")
    if floor is not None and b <= floor:
        return None, f"backprop's SNR {b:.3g} is within its noise floor {floor:.3g}: no detectable mean update"
    return a / b, ""


def ratio_entry(metrics: dict[str, Any], point: str) -> float | None:
    """The hidden-layer SNR ratio of a record's ``update_variance`` at ``point``.

    Recomputed from the two sides' per-layer SNRs with :func:`layer_ratio`, so records
    written before the noise-floor rule read the same as new ones.
    """
    value = metrics.get("update_variance")
    if not isinstance(value, dict) or not isinstance(value.get(point), dict):
        return None
    sides = value[point]
    rule, backprop = sides.get("rule"), sides.get("backprop")
    if not isinstance(rule, dict) or not isinstance(backprop, dict):
        ratio = sides.get("snr_ratio")  # a record without the two sides: its stored ratio
        return number(ratio.get("hidden")) if isinstance(ratio, dict) else None
    theirs, ours = backprop.get("per_layer") or {}, rule.get("per_layer") or {}
    ratios = [layer_ratio(ours.get(name), theirs[name])[0] for name in hidden_layers(list(theirs))]
    return _mean(ratios)
