"""What training itself yields: accuracy, learning curves and the training budget.

These values come from the training loop (:class:`biobench.training.pairing.PairingModule`
keeps the per-epoch history; :class:`LearningCurvesMeasurement` writes it into the
record); their definitions sit here beside the harness metrics so that the README
table, the leaderboard and the record validation cover every metric of a record.
"""

from __future__ import annotations

from typing import Any

from biobench.metrics.base import (
    COUNT,
    FRACTION,
    NONNEGATIVE,
    Column,
    HistoryFigure,
    Metric,
    MetricDefinition,
    nullable,
    scalar,
)
from biobench.metrics.measurement import Measurement


class Accuracy(Metric):
    """Classification accuracy of the trained network on the task's splits."""

    definition = MetricDefinition(
        keys=("test_acc", "val_acc", "train_acc", "best_val_epoch", "test_acc_at_best_val"),
        measures=(
            "classification accuracy; `test_acc` after the last epoch; model selection on the validation "
            "split only: `best_val_epoch` is the epoch of the highest validation accuracy (the first of "
            "ties) and `test_acc_at_best_val` the test accuracy at that epoch (the test split never chooses)"
        ),
        formula="mean[argmax f(x) = y]; train accuracy from the logits `compute_update` returns during the epoch",
        sign="higher is better",
        eps="none",
        averaging="all examples of the split as cut by the profile (network in eval mode for val/test)",
        unit="fraction correct, in [0, 1]",
        when="after every epoch (`history`); the final value after the last epoch",
        null_when="no epoch completed; the selection entries also when there is no validation split",
    )
    order = 200
    schemas = {
        **{key: FRACTION for key in ("test_acc", "val_acc", "train_acc", "test_acc_at_best_val")},
        "best_val_epoch": {"type": "integer", "minimum": 1},
    }
    columns = (
        Column(
            "test_acc", "Test acc. (%)", "test accuracy after the last epoch, mean ± sample std over ok seeds",
            lambda m: scalar(m, "test_acc"), order=10, digits=2, percent=True, spread=True,
            tolerance=0.01, readme=True,
        ),
    )


class LearningCurves(Metric):
    """Per-epoch losses and accuracies, and the final training loss."""

    definition = MetricDefinition(
        keys=("history", "final_train_loss"),
        measures=(
            "learning curves: per-epoch `train_loss`, `train_acc`, `val_loss`, `val_acc`, `test_acc`, "
            "`epoch_time_s`; `final_train_loss` is the last `train_loss`"
        ),
        formula=(
            "train_loss = Σ_batches loss_b · n_b / Σ n_b, loss_b the batch-mean task loss that "
            "`compute_update` returns (weights before that step's update)"
        ),
        sign="lower loss is better",
        eps="none",
        averaging="over the training examples seen in the epoch",
        unit="nats (cross-entropy) for the loss",
        when="every epoch",
        null_when="no epoch completed",
    )
    order = 210
    schemas = {
        "final_train_loss": NONNEGATIVE,
        "history": {
            "type": "object",
            "properties": {
                "epoch": {"type": "array", "items": COUNT},
                **{k: {"type": "array", "items": nullable(FRACTION)} for k in ("train_acc", "val_acc", "test_acc")},
                **{k: {"type": "array", "items": nullable(NONNEGATIVE)} for k in ("train_loss", "val_loss", "epoch_time_s")},
            },
        },
    }
    columns = (
        Column(
            "final_train_loss", "Train loss", "mean training loss of the last epoch",
            lambda m: scalar(m, "final_train_loss"), order=85, tolerance=0.05,
        ),
    )
    figures = (
        HistoryFigure(
            (("train_loss", "training loss (epoch mean)", "Training loss"),
             ("test_acc", "test accuracy", "Test accuracy")),
            "learning_curves", "learning", "Learning curves", "Mean over ok seeds; shaded: min-max over seeds.",
        ),
    )


class TrainingCost(Metric):
    """The training budget a run used: epochs, time and parameters."""

    definition = MetricDefinition(
        keys=("epochs", "wall_time_s", "time_per_epoch_s", "parameter_count"),
        measures=(
            "training budget: completed epochs, wall time of the whole fit (training, evaluation "
            "and harness measurements), mean training time per epoch, trainable parameters"
        ),
        formula=(
            "time_per_epoch_s = mean over epochs of the time from the epoch's first to last training "
            "step (excludes evaluation and harness measurements)"
        ),
        sign="lower is cheaper",
        eps="none",
        averaging="over completed epochs",
        unit="seconds; count",
        when="after training",
        null_when="no epoch completed (`time_per_epoch_s`)",
    )
    order = 220
    schemas = {"epochs": COUNT, "wall_time_s": NONNEGATIVE, "time_per_epoch_s": NONNEGATIVE, "parameter_count": COUNT}
    columns = (
        Column("epochs", "Epochs", "epochs trained (the most over ok seeds)",
               lambda m: scalar(m, "epochs"), order=80, integer=True, aggregate="max"),
        Column("time_per_epoch_s", "s/epoch", "wall time per epoch (machine dependent)",
               lambda m: scalar(m, "time_per_epoch_s"), order=90, digits=1),
        Column("parameter_count", "Params", "trainable parameters of the network",
               lambda m: scalar(m, "parameter_count"), order=100, integer=True, aggregate="first"),
    )


class LearningCurvesMeasurement(Measurement):
    """Writes the training loop's per-epoch history and its summaries into the record."""

    def __init__(self, history: dict[str, list[float]], parameter_count: int) -> None:
        self.history = history
        self.parameter_count = parameter_count
        self.wall_time_s = 0.0

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """History, final accuracies and loss, best test accuracy, epochs, times and parameter count."""
        h = self.history
        metrics["history"] = h
        metrics["epochs"] = len(h["epoch"])
        metrics["wall_time_s"] = self.wall_time_s
        metrics["parameter_count"] = self.parameter_count
        for key, source in (
            ("test_acc", "test_acc"), ("val_acc", "val_acc"), ("final_train_loss", "train_loss"),
            ("train_acc", "train_acc"),
        ):
            if h[source] and h[source][-1] is not None:
                metrics[key] = h[source][-1]
            else:
                metrics[key] = None
                reasons[key] = (
                    "no epoch completed" if not h[source]
                    else "the test split is not evaluated in tuning trials" if key == "test_acc"
                    else "no validation split (trained on it)"
                )
        if h["epoch_time_s"]:
            metrics["time_per_epoch_s"] = sum(h["epoch_time_s"]) / len(h["epoch_time_s"])
        else:
            metrics["time_per_epoch_s"] = None
            reasons["time_per_epoch_s"] = "no epoch completed"
        validated = [(acc, i) for i, acc in enumerate(h["val_acc"]) if acc is not None]
        if validated:
            best = max(validated, key=lambda pair: (pair[0], -pair[1]))[1]
            metrics["best_val_epoch"] = h["epoch"][best]
            metrics["test_acc_at_best_val"] = h["test_acc"][best]
            if metrics["test_acc_at_best_val"] is None:
                reasons["test_acc_at_best_val"] = "the test split is not evaluated in tuning trials"
        else:
            metrics["best_val_epoch"] = metrics["test_acc_at_best_val"] = None
            why = "no epoch completed" if not h["epoch"] else "no validation split (trained on it)"
            reasons["best_val_epoch"] = reasons["test_acc_at_best_val"] = why
