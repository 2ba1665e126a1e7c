"""Run every harness metric on one pairing and write the results into its record.

:class:`HarnessMeasurements` is a :class:`~biobench.metrics.measurement.Measurement`;
the training loop decides when to call it. Every measurement runs inside a
:class:`~biobench.metrics.state.TrainingState` snapshot, with torch's global
generator seeded from the run's seed, and restores the state afterwards, so the
training trajectory is the same whether or not the metrics run.

Points of the curves (gradient bias, feedback angle, signal angle): before the
first update, after every epoch (outside the epoch's timer, so ``time_per_epoch_s``
excludes measurements) and after the last epoch. The gradient variance is measured
before the first update and after the last epoch; FGSM after the last epoch.

Probe data (identical for every pairing): the first ``bias_examples`` training
examples (gradient bias, angles), the first ``snr_examples`` training examples
(variance) and the first ``fgsm_examples`` test examples (FGSM), of the splits as
cut by the run's profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from biobench.metrics.alignment import FeedbackAngle, SignalAngle
from biobench.metrics.base import DEFAULT_SETTINGS, MeasurementSettings, MetricUndefined, Outcome
from biobench.metrics.gradients import (
    GradientBias,
    OutputSignals,
    UpdateAngle,
    per_example_reference_gradients,
    per_example_rule_updates,
    reference_description,
    reference_gradient,
    require_reference,
    rule_update,
)
from biobench.metrics.measurement import Measurement, RunState
from biobench.metrics.robustness import FGSMAccuracy
from biobench.metrics.state import TrainingState
from biobench.metrics.variance import POINTS, UpdateVariance
from biobench.plugin_api.interfaces import LearningRule, Network, Task, TaskData

NOT_FINISHED = "not measured: training stopped before the end of its last epoch (see the record's status)"
FGSM_KEYS = ("fgsm_acc", "fgsm_drop", "fgsm_ci95", "fgsm_examples")


def guarded(fn: Callable[[], Outcome]) -> Outcome:
    """``fn()``, with :class:`MetricUndefined` or any other error turned into a null outcome and its reason."""
    try:
        return fn()
    except MetricUndefined as exc:
        return Outcome.undefined(str(exc))
    except Exception as exc:  # a measurement must never stop training; the error is recorded
        return Outcome.undefined(f"measurement raised {type(exc).__name__}: {exc}")


def _curve_point(epoch: int, step: int, outcome: Outcome, fields: tuple[str, ...]) -> dict[str, Any]:
    point: dict[str, Any] = {"epoch": epoch, "step": step}
    if outcome.value is None:
        why = outcome.reasons.get("", "undefined")
        point.update({f: None for f in fields})
        point["per_layer"] = {}
        point["reasons"] = {fields[0]: why}
    else:
        point.update(outcome.value)
        point["reasons"] = dict(outcome.reasons)
    return point


def _nest(outcomes: dict[str, Outcome]) -> Outcome:
    """One outcome whose value holds each outcome's value under its name (reasons prefixed)."""
    reasons: dict[str, str] = {}
    for name, outcome in outcomes.items():
        reasons.update({f"{name}.{path}" if path else name: why for path, why in outcome.reasons.items()})
    return Outcome({name: o.value for name, o in outcomes.items()}, reasons)


class HarnessMeasurements(Measurement):
    """The harness's metrics of one run: gradient bias, angles, variance and FGSM robustness."""

    def __init__(
        self,
        network: Network,
        rule: LearningRule,
        task: Task,
        data: TaskData,
        seed: int,
        settings: MeasurementSettings | None = None,
    ) -> None:
        self.network, self.rule, self.task, self.seed = network, rule, task, seed
        self.settings = settings = settings or DEFAULT_SETTINGS
        self.bias_x, self.bias_y = data.train_x[: settings.bias_examples], data.train_y[: settings.bias_examples]
        self.snr_x, self.snr_y = data.train_x[: settings.snr_examples], data.train_y[: settings.snr_examples]
        self.fgsm_x, self.fgsm_y = data.test_x[: settings.fgsm_examples], data.test_y[: settings.fgsm_examples]
        self.points: dict[str, list[tuple[int, int, Outcome]]] = {"bias": [], "feedback": [], "signal": []}
        self.variance: dict[str, Outcome] = {}
        self.fgsm: Outcome | None = None
        self.seconds = 0.0

    def at_start(self, step: int) -> None:
        """Measure the initial weights (curves' first point and the initial variance)."""
        self.measure_point(0, step)
        self.measure_variance("initial")

    def after_epoch(self, epoch: int, step: int) -> None:
        """Measure the weights after an epoch."""
        self.measure_point(epoch, step)

    def at_end(self, epochs: int, step: int) -> None:
        """Measure the final weights, with the final variance and FGSM."""
        self.measure_point(epochs, step)
        self.measure_variance("final")
        self.measure_fgsm()

    @contextmanager
    def _measuring(self) -> Iterator[TrainingState]:
        started = time.perf_counter()
        state = TrainingState(self.network, self.rule)
        self.network.module.train()  # as during training (FGSM switches to eval itself)
        try:
            yield state
        finally:
            state.restore()
            self.seconds += time.perf_counter() - started

    def _bias_and_signals(self, state: TrainingState) -> tuple[Outcome, Outcome]:
        require_reference(self.network)
        ours, theirs = OutputSignals(), OutputSignals()
        torch.manual_seed(self.seed)
        update = rule_update(self.network, self.rule, self.task, self.bias_x, self.bias_y, ours)
        state.restore(modes=False)  # the reference sees the same weights, state and random numbers
        torch.manual_seed(self.seed)
        reference = reference_gradient(self.network, self.task, self.bias_x, self.bias_y, theirs)
        return GradientBias().compute(update, reference), SignalAngle().compute(self.network, ours, theirs)

    def measure_point(self, epoch: int, step: int) -> None:
        """Gradient bias and both angles at the current weights (``epoch`` epochs, ``step`` steps done)."""
        with self._measuring() as state:
            try:
                bias, signal = self._bias_and_signals(state)
            except MetricUndefined as exc:
                bias = signal = Outcome.undefined(str(exc))
            except Exception as exc:  # a measurement must never stop training; the error is recorded
                bias = signal = Outcome.undefined(f"measurement raised {type(exc).__name__}: {exc}")
            state.restore(modes=False)
            feedback = guarded(lambda: FeedbackAngle().compute(self.network, self.rule))
        self.points["bias"].append((epoch, step, bias))
        self.points["signal"].append((epoch, step, signal))
        self.points["feedback"].append((epoch, step, feedback))

    def measure_variance(self, point: str) -> None:
        """The rule's and backprop's per-example update statistics at the current weights."""
        variance = UpdateVariance()
        with self._measuring() as state:
            torch.manual_seed(self.seed)
            rule_side = guarded(
                lambda: variance.side(
                    per_example_rule_updates(self.network, self.rule, self.task, self.snr_x, self.snr_y, state)
                )
            )
            state.restore(modes=False)
            torch.manual_seed(self.seed)
            backprop_side = guarded(
                lambda: variance.side(per_example_reference_gradients(self.network, self.task, self.snr_x, self.snr_y))
            )
        self.variance[point] = _nest(
            {"rule": rule_side, "backprop": backprop_side, "snr_ratio": UpdateVariance.ratio(rule_side, backprop_side)}
        )

    def measure_fgsm(self) -> None:
        """FGSM accuracy, drop and intervals at the final weights."""
        s = self.settings
        with self._measuring():
            self.fgsm = guarded(
                lambda: FGSMAccuracy(s.fgsm_epsilons_255, s.fgsm_chunk).compute(
                    self.network, self.task, self.fgsm_x, self.fgsm_y, seed=self.seed
                )
            )

    def _curve(self, name: str, fields: tuple[str, ...]) -> Outcome:
        points = self.points[name]
        if not points:
            return Outcome.undefined("no measurement point was reached")
        if all(o.value is None for _, _, o in points):
            return Outcome.undefined(points[-1][2].reasons.get("", "undefined at every point"))
        return Outcome([_curve_point(e, s, o, fields) for e, s, o in points])

    def outcomes(self, finished: bool) -> dict[str, Outcome]:
        """Every record entry this harness produces, as outcomes keyed by record key."""
        out: dict[str, Outcome] = {
            "gradient_bias_curve": self._curve("bias", ("hidden", "overall")),
            "feedback_angle_curve": self._curve("feedback", ("mean",)),
            "signal_angle_curve": self._curve("signal", ("hidden",)),
        }
        variance: dict[str, Outcome] = {
            point: self.variance.get(point) or Outcome.undefined(NOT_FINISHED) for point in POINTS
        }
        if not finished:
            variance["final"] = Outcome.undefined(NOT_FINISHED)
        nested = _nest(variance)
        nested.value["examples"] = len(self.snr_x)
        out["update_variance"] = nested
        if finished and self.points["bias"] and self.fgsm is not None:
            bias = self.points["bias"][-1][2]
            out["gradient_bias"] = bias
            out["update_angle_deg"] = UpdateAngle().compute(bias)
            out["feedback_angle_deg"] = self.points["feedback"][-1][2]
            out["signal_angle_deg"] = self.points["signal"][-1][2]
            if self.fgsm.value is None:
                out.update({key: Outcome(None, dict(self.fgsm.reasons)) for key in FGSM_KEYS})
            else:
                out.update({key: Outcome(self.fgsm.value[key]) for key in FGSM_KEYS})
        else:
            for key in ("gradient_bias", "update_angle_deg", "feedback_angle_deg", "signal_angle_deg", *FGSM_KEYS):
                out[key] = Outcome.undefined(NOT_FINISHED)
        return out

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """Add this harness's entries (and the reasons of null ones) to a record."""
        for key, outcome in self.outcomes(finished).items():
            metrics[key] = outcome.value
            reasons.update(outcome.flat_reasons(key))
        metrics["gradient_reference"] = reference_description(self.network)
        metrics["harness_settings"] = {
            **self.settings.as_dict(),
            "bias_probe": f"first {len(self.bias_x)} training examples",
            "variance_probe": f"first {len(self.snr_x)} training examples",
            "fgsm_probe": f"first {len(self.fgsm_x)} test examples",
            "measurement_seed": self.seed,
        }
        metrics["harness_metrics_time_s"] = self.seconds


def harness_measurement(run: RunState, settings: MeasurementSettings | None = None) -> HarnessMeasurements:
    """The harness's gradient, alignment, variance and robustness measurements of one run (default ``settings``)."""
    return HarnessMeasurements(run.network, run.rule, run.task, run.data, seed=int(run.seed), settings=settings)


MEASUREMENTS = (harness_measurement,)
