"""Stopping hopeless tuning trials early: the trial's validation accuracy is reported to its study after every epoch.

:func:`trial_reporter` is a measurement factory (module-level, so worker processes
and Ray tasks import it by name). For a run that belongs to a tuning trial (its
``provenance["trial"]`` names a study, its storage and the trial), it reports the validation
accuracy after every epoch but the last and stops the run with
:class:`~biobench.metrics.measurement.StopRun` (status ``pruned``) when the study's
pruner says so.
"""

from __future__ import annotations

from typing import Any

from biobench.metrics.measurement import Measurement, RunState, StopRun

PRUNERS = ("median", "none")


def make_pruner(name: str) -> Any:
    """The Optuna pruner called ``name``: ``median`` (of earlier trials at the same epoch) or ``none``."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    raise ValueError(f"unknown pruner {name!r}; known: {', '.join(PRUNERS)}")


class TrialReporter(Measurement):
    """Reports a trial's per-epoch validation accuracy to its Optuna study and applies the pruner."""

    def __init__(self, run: RunState) -> None:
        import optuna

        tuning = run.provenance["trial"]
        self.history = run.history
        study = optuna.load_study(
            study_name=tuning["study"], storage=tuning["storage"], pruner=make_pruner(tuning.get("pruner", "median"))
        )
        # Optuna's Trial takes the storage's trial id, which the study handed out with the trial.
        self.trial = optuna.trial.Trial(study, int(tuning["trial_id"]))
        self.number = tuning["trial"]

    def after_epoch(self, epoch: int, step: int) -> None:
        """Report the epoch's validation accuracy; stop the run if the pruner says the trial is hopeless."""
        values = self.history.get("val_acc") or []
        if not values or values[-1] is None:
            return
        self.trial.report(float(values[-1]), epoch)
        if self.trial.should_prune():
            raise StopRun(
                "pruned",
                f"trial {self.number} stopped after epoch {epoch}: validation accuracy {values[-1]:.4f} below "
                "the median of earlier trials at that epoch",
            )

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """Nothing to add: the record's history holds the reported values."""


def trial_reporter(run: RunState) -> TrialReporter | None:
    """The reporter of a tuning trial's run; None for any other run."""
    trial = run.provenance.get("trial")
    if not isinstance(trial, dict) or not {"study", "storage", "trial_id"} <= set(trial):
        return None
    return TrialReporter(run)
