"""One thin LightningModule for every (architecture, rule, task) pairing.

Training uses Lightning's manual optimisation: for each mini-batch the module
zeroes the gradients, asks the rule to write its update into ``.grad`` (descent
convention) and lets the rule's optimiser apply it. The module knows nothing of
any particular rule or architecture.

Lightning's training step receives a block of ``MINIBATCHES_PER_STEP``
consecutive mini-batches (:class:`biobench.training.batches.BatchBlocks`) and the module
makes one update per mini-batch, each a step of Lightning's optimiser (so
``trainer.global_step`` counts updates). Lightning's per-step machinery costs
about 0.1 ms, a tenth of a whole MLP update on a CPU; paying it once per block
keeps the harness close to a hand-written loop (``ci/bench_harness.py``).
Lightning callbacks' ``on_train_batch_*`` hooks therefore see blocks; the
harness's own measurements hook into epochs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from biobench.plugin_api.interfaces import LearningRule, Network, Task
from biobench.plugin_api.optimization import OptimizerSettings, build_scheduler

EVAL_CHUNK = 2000
#: Mini-batches (rule updates) per Lightning training step.
MINIBATCHES_PER_STEP = 10


class Diverged(RuntimeError):
    """The training loss (or a weight) became NaN or infinite."""

    def __init__(self, epoch: int, step: int, what: str) -> None:
        super().__init__(f"{what} became non-finite at epoch {epoch}, step {step}")
        self.epoch, self.step, self.what = epoch, step, what


class PairingModule(pl.LightningModule):
    """Trains ``network`` with ``rule`` on ``task``; logs ``train/loss``, ``train/acc``, ``val/acc``, ``test/acc``.

    Per-epoch history (losses, accuracies, wall times) is kept in ``self.history``
    for the result record. Validation and test accuracy are evaluated on the
    in-memory splits at the end of every epoch.
    """

    def __init__(
        self,
        network: Network,
        rule: LearningRule,
        task: Task,
        eval_sets: dict[str, tuple[Tensor, Tensor]],
        config: dict[str, Any],
        optimizer: OptimizerSettings | None = None,
        evaluate_test: bool = True,
        sync_every_minibatch: bool = True,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net = network.module
        self.network = network
        self.rule = rule
        self.task = task
        self.eval_sets = eval_sets
        self.optimizer_settings = optimizer or OptimizerSettings.resolve(rule.optimizer)
        self.evaluate_test = evaluate_test
        self.sync_every_minibatch = sync_every_minibatch
        self.save_hyperparameters(config, ignore=["network", "rule", "task", "eval_sets"])
        self.history: dict[str, list[float]] = {
            "epoch": [], "train_loss": [], "train_acc": [], "val_acc": [], "test_acc": [],
            "val_loss": [], "epoch_time_s": [],
        }
        self._sum_loss = 0.0
        self._correct = 0
        self._seen = 0
        self._epoch_start = 0.0

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Batches are slices of the run's splits, which already live on the run's device: move only strays."""
        if device.type == "cpu" or all(t.device == device for pair in batch for t in pair):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def configure_optimizers(self) -> Any:
        """The run's optimiser (built by the rule) over the network's and the rule's parameters, and its schedule."""
        optimizer = self.rule.configure_optimizer(self.rule.trainable_parameters(), self.optimizer_settings)
        scheduler = build_scheduler(optimizer, self.optimizer_settings, int(self.trainer.max_epochs or 1))
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the network."""
        return self.network(x)

    def on_train_epoch_start(self) -> None:
        """Reset the running epoch statistics."""
        self._sum_loss, self._correct, self._seen = 0.0, 0, 0
        self._epoch_start = time.perf_counter()

    def training_step(self, block: list[tuple[Tensor, Tensor]], block_idx: int) -> None:
        """One rule update per mini-batch ``(x, y)`` of ``block``.

        The loss is checked before every optimiser step (``sync_every_minibatch``, the
        CPU) or once after the block (:meth:`_deferred_block`, accelerators).
        """
        if not self.sync_every_minibatch:
            self._deferred_block(block)
            return
        optimizer = self.optimizers()
        rule, loss_fn = self.rule, self.task.loss
        sum_loss, correct, seen = self._sum_loss, self._correct, self._seen  # one attribute write per block
        for x, y in block:
            optimizer.zero_grad(set_to_none=True)
            loss, logits = rule.compute_update(x, y, loss_fn)
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise Diverged(self.current_epoch, self.global_step, "training loss")
            optimizer.step()
            rule.after_step()
            n = len(y)
            sum_loss += loss_value * n
            correct += int((self.task.predict(logits) == y).sum())
            seen += n
        self._sum_loss, self._correct, self._seen = sum_loss, correct, seen

    def _deferred_block(self, block: list[tuple[Tensor, Tensor]]) -> None:
        """The updates of a block with two reads of device values in all: the losses and the correct count.

        The per-batch losses stay on the device until the block ends; they are then
        read as Python floats and summed in the same order as the per-mini-batch path,
        so the epoch's statistics are the same numbers. A non-finite loss raises
        :class:`Diverged` with the step of its mini-batch; the updates after it in the
        block have run on the diverged weights, which are discarded with the run. An
        error raised by such an update is reported as the divergence that caused it.
        """
        optimizer = self.optimizers()
        rule, loss_fn = self.rule, self.task.loss
        first_step = self.global_step
        losses: list[Tensor] = []
        correct: Tensor | None = None
        try:
            for x, y in block:
                optimizer.zero_grad(set_to_none=True)
                loss, logits = rule.compute_update(x, y, loss_fn)
                losses.append(loss.detach().reshape(()))
                optimizer.step()
                rule.after_step()
                hits = (self.task.predict(logits) == y).sum()
                correct = hits if correct is None else correct + hits
        except Exception:
            self._check_losses(losses, first_step)
            raise
        values = self._check_losses(losses, first_step)
        sum_loss = self._sum_loss
        for value, (_, y) in zip(values, block, strict=True):
            sum_loss += value * len(y)
        self._sum_loss = sum_loss
        self._correct += 0 if correct is None else int(correct)
        self._seen += sum(len(y) for _, y in block)

    def _check_losses(self, losses: list[Tensor], first_step: int) -> list[float]:
        """The losses as floats (one read); raise :class:`Diverged` at the first non-finite one."""
        values = torch.stack(losses).tolist() if losses else []
        for index, value in enumerate(values):
            if not math.isfinite(value):
                raise Diverged(self.current_epoch, first_step + index, "training loss")
        return values

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[float | None, float | None]:
        """(mean loss, accuracy) of the current weights on ``(x, y)``, in chunks; (None, None) when empty."""
        if len(x) == 0:
            return None, None
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = self.network(xb)
            total_loss += float(self.task.loss(logits, yb)) * len(yb)
            correct += int((self.task.predict(logits) == yb).sum())
        return total_loss / len(x), correct / len(x)

    def on_train_epoch_end(self) -> None:
        """Evaluate the splits, check the weights are finite and log the epoch."""
        elapsed = time.perf_counter() - self._epoch_start
        for p in self.rule.trainable_parameters():
            if not torch.isfinite(p).all():
                raise Diverged(self.current_epoch, self.global_step, "a weight")
        train_loss = self._sum_loss / max(self._seen, 1)
        train_acc = self._correct / max(self._seen, 1)
        was_training = self.net.training
        self.net.eval()
        val_loss, val_acc = self.evaluate(*self.eval_sets["val"])
        _, test_acc = self.evaluate(*self.eval_sets["test"]) if self.evaluate_test else (None, None)
        self.net.train(was_training)
        if val_loss is not None and not math.isfinite(val_loss):
            raise Diverged(self.current_epoch, self.global_step, "validation loss")
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        h = self.history
        h["epoch"].append(self.current_epoch + 1)
        h["train_loss"].append(train_loss)
        h["train_acc"].append(train_acc)
        h["val_loss"].append(val_loss)
        h["val_acc"].append(val_acc)
        h["test_acc"].append(test_acc)
        h["epoch_time_s"].append(elapsed)
        logged = {
            "train/loss": train_loss, "train/acc": train_acc, "val/loss": val_loss, "val/acc": val_acc,
            "test/acc": test_acc, "epoch_time_s": elapsed,
        }
        self.log_dict({k: v for k, v in logged.items() if v is not None}, on_step=False, on_epoch=True)
