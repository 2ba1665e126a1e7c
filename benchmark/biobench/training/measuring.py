"""The Lightning callback that calls a run's measurements at their points in training.

Points: before the first update (``on_train_start``), after every epoch but the
last (at the start of the next one, before the epoch timer of
:class:`biobench.training.pairing.PairingModule` starts, so ``time_per_epoch_s``
excludes measurements) and after the last epoch (``on_train_end``).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from biobench.metrics.measurement import Measurement


class MeasurementCallback(pl.Callback):
    """Drives :class:`~biobench.metrics.measurement.Measurement` objects and collects their entries."""

    def __init__(self, measurements: list[Measurement]) -> None:
        self.measurements = measurements
        self.epochs_done = 0
        self.finished = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Measure the initial weights."""
        for m in self.measurements:
            m.at_start(trainer.global_step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Count the epoch; it is measured at the start of the next one or at the end of training."""
        self.epochs_done += 1

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Measure the weights after the previous epoch."""
        if self.epochs_done > 0:
            for m in self.measurements:
                m.after_epoch(self.epochs_done, trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Measure the final weights."""
        for m in self.measurements:
            m.at_end(self.epochs_done, trainer.global_step)
        self.finished = True

    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str]) -> None:
        """Every measurement's entries (null ones with reasons), also when training stopped early."""
        for m in self.measurements:
            m.contribute(metrics, reasons, self.finished)
