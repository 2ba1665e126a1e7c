"""Run every harness metric on one pairing and write the results into its record.

:class:`HarnessMeasurements` is a :class:`~biobench.metrics.measurement.Measurement`;
the training loop decides when to call it. Every measurement runs
inside a :class:`~biobench.metrics.state.TrainingState` snapshot, with torch's
global generator seeded from the run's seed, and restores the state afterwards,
so the training trajectory is the same whether or not the metrics run.

Points of the curves: before the first update, after every epoch (outside the
epoch's timer, so ``time_per_epoch_s`` excludes measurements) and after the last
epoch, where the final SNR and FGSM measurements run too.

Probe data (identical for every pairing): the first ``bias_examples`` training
examples (gradient bias, alignment), the first ``snr_examples`` training
examples (SNR) and the first ``fgsm_examples`` test examples (FGSM), of the
splits as cut by the run's profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from biobench.metrics.alignment import AlignmentAngle
from biobench.metrics.base import DEFAULT_SETTINGS, MeasurementSettings, MetricUndefined, Outcome
from biobench.metrics.gradients import (
    GradientBias,
    GradientSNR,
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
from biobench.plugin_api.interfaces import LearningRule, Network, Task, TaskData

NOT_FINISHED = "not measured: training stopped before the end of its last epoch (see the record's status)"


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


class HarnessMeasurements(Measurement):
    """The harness's metrics for one run (gradient bias, update angle, SNR, alignment, FGSM)."""

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
        self.bias_points: list[tuple[int, int, Outcome]] = []
        self.alignment_points: list[tuple[int, int, Outcome]] = []
        self.final: dict[str, Outcome] | None = None
        self.seconds = 0.0

    def at_start(self, step: int) -> None:
        """Measure the initial weights."""
        self.measure_point(0, step)

    def after_epoch(self, epoch: int, step: int) -> None:
        """Measure the weights after an epoch."""
        self.measure_point(epoch, step)

    def at_end(self, epochs: int, step: int) -> None:
        """Measure the final weights, with the final-only metrics."""
        self.measure_point(epochs, step)
        self.measure_final()

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

    def _bias(self, state: TrainingState) -> Outcome:
        require_reference(self.network)
        torch.manual_seed(self.seed)
        update = rule_update(self.network, self.rule, self.task, self.bias_x, self.bias_y)
        state.restore(modes=False)  # the reference sees the same weights, state and random numbers
        torch.manual_seed(self.seed)
        reference = reference_gradient(self.network, self.task, self.bias_x, self.bias_y)
        return GradientBias().compute(update, reference)

    def measure_point(self, epoch: int, step: int) -> None:
        """Gradient bias and alignment at the current weights (``epoch`` epochs, ``step`` steps done)."""
        with self._measuring() as state:
            bias = guarded(lambda: self._bias(state))
            state.restore(modes=False)
            torch.manual_seed(self.seed)
            alignment = guarded(
                lambda: AlignmentAngle().compute(self.network, self.rule, self.task, self.bias_x, self.bias_y)
            )
        self.bias_points.append((epoch, step, bias))
        self.alignment_points.append((epoch, step, alignment))

    def measure_final(self) -> None:
        """SNR of the rule and of backprop, and FGSM accuracy, at the final weights."""
        s = self.settings
        snr = GradientSNR(s.snr_eps, s.snr_ddof)
        with self._measuring() as state:
            torch.manual_seed(self.seed)
            rule_snr = guarded(
                lambda: snr.compute(
                    per_example_rule_updates(self.network, self.rule, self.task, self.snr_x, self.snr_y, state),
                    len(self.snr_x),
                )
            )
            state.restore(modes=False)
            torch.manual_seed(self.seed)
            backprop_snr = guarded(
                lambda: snr.compute(
                    per_example_reference_gradients(self.network, self.task, self.snr_x, self.snr_y),
                    len(self.snr_x),
                )
            )
            state.restore(modes=False)
            fgsm = guarded(
                lambda: FGSMAccuracy(s.fgsm_epsilons_255, s.fgsm_chunk).compute(
                    self.network, self.task, self.fgsm_x, self.fgsm_y, seed=self.seed
                )
            )
        self.final = {
            "gradient_snr": rule_snr,
            "gradient_snr_backprop": backprop_snr,
            "gradient_snr_ratio_to_backprop": GradientSNR.ratio(rule_snr, backprop_snr),
            "fgsm_acc": fgsm,
        }

    def _curve(self, points: list[tuple[int, int, Outcome]], fields: tuple[str, ...]) -> Outcome:
        if not points:
            return Outcome.undefined("no measurement point was reached")
        if all(o.value is None for _, _, o in points):
            return Outcome.undefined(points[-1][2].reasons.get("", "undefined at every point"))
        return Outcome([_curve_point(e, s, o, fields) for e, s, o in points])

    def outcomes(self, finished: bool) -> dict[str, Outcome]:
        """Every record entry this harness produces, as outcomes keyed by record key."""
        out: dict[str, Outcome] = {
            "gradient_bias_curve": self._curve(self.bias_points, ("overall", "hidden")),
            "alignment_angle_curve": self._curve(self.alignment_points, ("mean",)),
        }
        if finished and self.bias_points and self.final is not None:
            bias = self.bias_points[-1][2]
            out["gradient_bias"] = bias
            out["update_angle_deg"] = UpdateAngle().compute(bias)
            out["alignment_angle_deg"] = self.alignment_points[-1][2]
            out.update(self.final)
        else:
            for key in (
                "gradient_bias", "update_angle_deg", "alignment_angle_deg", "gradient_snr",
                "gradient_snr_backprop", "gradient_snr_ratio_to_backprop", "fgsm_acc",
            ):
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
            "snr_probe": f"first {len(self.snr_x)} training examples",
            "fgsm_probe": f"first {len(self.fgsm_x)} test examples",
            "measurement_seed": self.seed,
        }
        metrics["harness_metrics_time_s"] = self.seconds


def harness_measurement(run: RunState, settings: MeasurementSettings | None = None) -> HarnessMeasurements:
    """The harness's gradient, alignment and robustness measurements of one run (default ``settings``)."""
    return HarnessMeasurements(run.network, run.rule, run.task, run.data, seed=int(run.seed), settings=settings)


MEASUREMENTS = (harness_measurement,)
