"""Run pairings: plan a grid, train each pairing through Lightning, write one record per run.

A run never crashes the grid: an unsupported pairing, a diverging loss and an
exception each become a record (``unsupported``, ``diverged``, ``failed``). A run
whose record already exists for the same configuration is skipped (resume after
a crash or Ctrl-C) unless ``force`` is set; ``failed`` records are retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from biobench.metrics import catalog
from biobench.metrics.measurement import RunState, StopRun
from biobench.metrics.training import LearningCurvesMeasurement
from biobench.plugin_api.hyperparameters import check_options
from biobench.plugin_api.interfaces import Architecture, LearningRule, Task, TaskData
from biobench.plugin_api.optimization import OPTIMIZER_OPTIONS, OptimizerSettings
from biobench.plugin_api.registry import Registered, Registry
from biobench.results import records
from biobench.results.store import ResultStore
from biobench.training import devices
from biobench.training.batches import BatchBlocks, TensorBatches
from biobench.training.measuring import MeasurementCallback
from biobench.training.pairing import MINIBATCHES_PER_STEP, Diverged, PairingModule
from biobench.training.profiles import Profile, get_profile

QUIET_LOGGERS = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")


def default_measurement_factories() -> list[Callable[..., Any]]:
    """The harness's measurements, the same for every pairing (every metrics module's ``MEASUREMENTS``)."""
    return catalog.measurement_factories()


@dataclass(frozen=True)
class RunSpec:
    """One requested run: names, seed, profile and the options that differ from the defaults.

    ``run_options`` change the profile's budget (keys of
    :data:`biobench.training.profiles.RUN_KEYS`) or say where the run executes
    (``accelerator``, ``devices``: :mod:`biobench.training.devices`; recorded, but not
    part of the configuration that identifies the run), ``optimizer_options`` the optimiser
    (keys of :data:`biobench.plugin_api.optimization.OPTIMIZER_OPTIONS`). ``track``
    names the leaderboard track (``default``, or ``tuned`` for a configuration chosen
    by ``biobench tune``); ``provenance`` is JSON text saying where the run comes from
    (a tuning trial, the tuned choice of a study, a published setup), stored in the record.
    """

    task: str
    architecture: str
    rule: str
    seed: int
    profile: str
    epochs: int | None = None
    batch_size: int | None = None
    architecture_options: tuple[tuple[str, Any], ...] = ()
    rule_options: tuple[tuple[str, Any], ...] = ()
    optimizer_options: tuple[tuple[str, Any], ...] = ()
    run_options: tuple[tuple[str, Any], ...] = ()
    task_options: tuple[tuple[str, Any], ...] = ()
    track: str = "default"
    provenance: str = ""

    @property
    def label(self) -> str:
        """A short human-readable name of the run (the record's ``run_id`` adds a configuration hash)."""
        return f"{self.task}__{self.architecture}__{self.rule}__{self.profile}__seed{self.seed}"

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The options this spec sets explicitly, by kind (stored in the record)."""
        run = dict(self.run_options)
        run.update({k: v for k, v in (("epochs", self.epochs), ("batch_size", self.batch_size)) if v is not None})
        found = {
            "task": dict(self.task_options), "architecture": dict(self.architecture_options),
            "rule": dict(self.rule_options), "optimizer": dict(self.optimizer_options), "run": run,
        }
        return {kind: values for kind, values in found.items() if values}


@dataclass(frozen=True)
class Resolved:
    """A spec resolved against the registry: plugin objects, budget, optimiser and the full config."""

    spec: RunSpec
    task: Task
    architecture: Architecture
    rule_cls: type[LearningRule]
    profile: Profile
    optimizer: OptimizerSettings
    config: dict[str, Any]
    #: ``auto``, ``cpu`` or ``gpu`` (:data:`biobench.training.devices.ACCELERATORS`); not in ``config``.
    accelerator: str = "auto"

    @property
    def run_id(self) -> str:
        """The record's id and file stem: the spec's label and the configuration's identity."""
        return records.run_id(self.spec.label, records.identity_hash(self.config))


@dataclass
class Progress:
    """Callbacks the runner uses to report progress (all optional no-ops)."""

    start: Callable[[RunSpec, int], None] = lambda spec, total: None
    advance: Callable[[int, str], None] = lambda steps, text: None
    finish: Callable[[RunSpec, dict[str, Any]], None] = lambda spec, record: None


@dataclass
class RunContext:
    """What every run of a grid shares: the registry, folders and reporting."""

    registry: Registry
    out_dir: Path
    data_dir: str | None = None
    force: bool = False
    progress: Progress = field(default_factory=Progress)
    #: Factories of the harness's measurements; each gets the run's :class:`RunState`.
    measurement_factories: list[Callable[..., Any]] = field(default_factory=default_measurement_factories)
    #: Where warnings about the results folder go (e.g. an invalid record moved aside).
    warn: Callable[[str], None] | None = None
    #: Whether a GPU may be used (None: ask torch); a Ray task says whether Ray gave it one.
    gpu_available: bool | None = None

    @property
    def store(self) -> ResultStore:
        """The results folder's records."""
        return ResultStore(self.out_dir, force=self.force, warn=self.warn)

    def record_path(self, spec: RunSpec) -> Path:
        """Where the record of ``spec`` lives."""
        return self.store.path(resolve(spec, self.registry).run_id)


def plan_grid(
    registry: Registry,
    tasks: Iterable[str],
    architectures: Iterable[str] | None,
    rules: Iterable[str] | None,
    seeds: Iterable[int],
    profile: str,
    epochs: int | None = None,
    batch_size: int | None = None,
) -> list[RunSpec]:
    """Every (task, architecture, rule, seed) combination; ``None`` means all registered."""
    get_profile(profile)
    task_names = list(tasks)
    arch_names = list(architectures) if architectures is not None else sorted(registry.architectures)
    rule_names = list(rules) if rules is not None else sorted(registry.rules)
    for kind, names in (("task", task_names), ("architecture", arch_names), ("rule", rule_names)):
        for name in names:
            registry.get(kind, name)  # raises UnknownNameError with suggestions
    seeds = list(seeds)
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds}")
    return [
        RunSpec(t, a, r, s, profile, epochs, batch_size)
        for t in task_names
        for a in arch_names
        for r in rule_names
        for s in seeds
    ]


def _plugin_ref(entry: Registered, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": entry.name,
        "config": config,
        "entry_point": entry.source.entry_point,
        "distribution": entry.source.distribution,
        "version": entry.source.version,
    }


def resolve(spec: RunSpec, registry: Registry) -> Resolved:
    """Instantiate the task and architecture, pick the budget and optimiser, build the full config.

    Every option is checked against what its plugin declares (type, range, choices),
    so a bad value is an error here, before any data is loaded.
    """
    task_entry = registry.get("task", spec.task)
    arch_entry = registry.get("architecture", spec.architecture)
    rule_entry = registry.get("rule", spec.rule)
    rule_cls: type[LearningRule] = rule_entry.cls
    task: Task = task_entry.cls(**dict(spec.task_options))
    arch_cls = arch_entry.cls
    arch_options = dict(arch_cls.profile_overrides.get(spec.profile, {}))
    arch_options.update(dict(spec.architecture_options))
    architecture: Architecture = arch_cls(**arch_options)
    architecture.input_steps = task.input_steps  # how the task's flattened input divides into time bins
    rule_options = dict(spec.rule_options)
    misplaced = sorted(set(rule_options) & set(OPTIMIZER_OPTIONS) - set(rule_cls.defaults))
    if misplaced:
        raise ValueError(
            f"{', '.join(misplaced)} belong(s) to the optimiser, not to rule {spec.rule!r}: use "
            + ", ".join(f"--{k.replace('_', '-')}" if k != "name" else "--optimizer" for k in misplaced)
        )
    rule_config = check_options(rule_cls.defaults, rule_options, f"rule {spec.rule!r}")
    optimizer = OptimizerSettings.resolve(rule_cls.optimizer, dict(spec.optimizer_options))
    profile = get_profile(spec.profile)
    for owner in (arch_cls, rule_cls):
        profile = profile.with_overrides(owner.run_overrides.get(spec.profile, {}))
    explicit = {k: v for k, v in (("epochs", spec.epochs), ("batch_size", spec.batch_size)) if v is not None}
    run_options = dict(spec.run_options)
    execution = {key: run_options.pop(key) for key in devices.EXECUTION_KEYS if key in run_options}
    accelerator = execution.get("accelerator", "auto")
    devices.check_request(accelerator, execution.get("devices", 1))
    profile = profile.with_overrides({**run_options, **explicit})
    config = {
        "task": _plugin_ref(task_entry, task.config),
        "architecture": _plugin_ref(arch_entry, architecture.config),
        "rule": _plugin_ref(rule_entry, rule_config),
        "run": {**profile.as_dict(), "seed": spec.seed, "optimizer": optimizer.as_dict()},
    }
    return Resolved(spec, task, architecture, rule_cls, profile, optimizer, config, accelerator)


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (x, y) if n is None or n >= len(x) else (x[:n], y[:n])


def new_record(resolved: Resolved) -> dict[str, Any]:
    """The record of a resolved run before it runs (status ``ok``, no metrics)."""
    spec = resolved.spec
    record = records.new_record(
        resolved.run_id, spec.task, spec.architecture, spec.rule, spec.seed, spec.profile,
        resolved.config, resolved.rule_cls,
    )
    record["overrides"] = spec.overrides()
    record["track"] = spec.track
    if spec.provenance:
        record["provenance"] = json.loads(spec.provenance)
    return record


def failed_record(spec: RunSpec, registry: Registry, reason: str) -> dict[str, Any]:
    """A validated ``failed`` record for a run whose own process could not write one."""
    record = new_record(resolve(spec, registry))
    record.update(status="failed", reason=reason)
    record["finished_at"] = records.now()
    return records.validate_record(record)


def existing_record(ctx: RunContext, resolved: Resolved) -> dict[str, Any] | None:
    """The stored record of a resolved run if it is valid, has the same config and did not fail."""
    return ctx.store.existing(resolved.run_id, resolved.config)


def load_task_data(task: Task, data_dir: str | None, profile: Profile) -> TaskData:
    """Load the task and cut the splits to the profile's subsets.

    Without validation (``profile.validation`` False) the validation split joins the
    training split (after it, so a training subset takes the same first examples)
    and the validation split is empty.
    """
    data = task.load(data_dir)
    train_x, train_y, val_x, val_y = data.train_x, data.train_y, data.val_x, data.val_y
    info = dict(data.info)
    if not profile.validation:
        train_x, train_y = torch.cat([train_x, val_x]), torch.cat([train_y, val_y])
        val_x, val_y = val_x[:0], val_y[:0]
        info["validation"] = "none: the validation split is trained on"
    tx, ty = _subset(train_x, train_y, profile.train_subset)
    vx, vy = _subset(val_x, val_y, profile.val_subset)
    sx, sy = _subset(data.test_x, data.test_y, profile.test_subset)
    return TaskData(tx, ty, vx, vy, sx, sy, info=info)


def data_on(data: TaskData, device: torch.device) -> TaskData:
    """The splits of ``data`` on ``device``, moved once per run (the same tensors when already there)."""
    splits = (data.train_x, data.train_y, data.val_x, data.val_y, data.test_x, data.test_y)
    return TaskData(*(t.to(device) for t in splits), info=data.info)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def execute(spec: RunSpec, ctx: RunContext) -> dict[str, Any]:
    """Run one pairing and write its record; returns the record (possibly a skipped one).

    The run uses the number of torch threads its configuration names (``run.threads``),
    whatever executor calls it, so its arithmetic does not depend on how many runs
    share the machine.
    """
    resolved = resolve(spec, ctx.registry)
    previous = existing_record(ctx, resolved)
    if previous is not None:
        previous = dict(previous, skipped=True)
        ctx.progress.finish(spec, previous)
        return previous
    record = new_record(resolved)
    reason = ctx.registry.unsupported_reason(resolved.architecture, resolved.rule_cls, resolved.task)
    if reason:
        record.update(status="unsupported", reason=reason)
    else:
        try:
            with torch_threads(resolved.profile.threads):
                record["environment"]["torch_threads"] = torch.get_num_threads()
                _train(resolved, ctx, record)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # recorded, never hidden; the grid goes on
            if isinstance(exc, StopRun):
                record.update(status=exc.status, reason=exc.reason)
            elif isinstance(exc, Diverged):
                record.update(status="diverged", reason=str(exc))
                record["metrics"]["diverged_epoch"] = exc.epoch + 1
            else:
                record.update(
                    status="failed",
                    reason=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
                )
    record["finished_at"] = records.now()
    ctx.store.write(record)
    ctx.progress.finish(spec, record)
    return record


@contextlib.contextmanager
def _quiet_lightning():
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _train(resolved: Resolved, ctx: RunContext, record: dict[str, Any]) -> None:
    """Resolve the run's device (recorded in ``environment``) and train there."""
    device = devices.resolve_device(resolved.accelerator, ctx.gpu_available)
    record["environment"].update(devices.describe(device))
    with devices.device_settings(device):
        _train_on(device, resolved, ctx, record)


def _train_on(device: torch.device, resolved: Resolved, ctx: RunContext, record: dict[str, Any]) -> None:
    """Train on ``device``: weights and the rule's state drawn on the CPU from the seed, then moved."""
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    spec, task, architecture, profile, config = (
        resolved.spec, resolved.task, resolved.architecture, resolved.profile, resolved.config
    )
    rule_cls = resolved.rule_cls
    torch.manual_seed(spec.seed)
    data = data_on(load_task_data(task, ctx.data_dir, profile), device)
    generator = torch.Generator().manual_seed(spec.seed)  # CPU: the same initial state on every device
    network = architecture.build(task.input_size, task.output_size, generator)
    network.module.to(device)
    rule = rule_cls(**config["rule"]["config"])
    rule.bind(network, generator)  # the rule's buffers drawn on the CPU, its noise generators on ``device``
    rule.to(device)
    module = PairingModule(
        network,
        rule,
        task,
        eval_sets={"val": (data.val_x, data.val_y), "test": (data.test_x, data.test_y)},
        config=config,
        optimizer=resolved.optimizer,
        evaluate_test=profile.evaluate_test,
        sync_every_minibatch=not devices.defer_syncs(device),
    )
    train_batches = TensorBatches(data.train_x, data.train_y, profile.batch_size, shuffle=True, seed=spec.seed)
    steps_per_epoch = len(train_batches)
    train_blocks = BatchBlocks(train_batches, MINIBATCHES_PER_STEP)
    run_state = RunState(
        seed=spec.seed, network=network, rule=rule, task=task, data=data, profile=profile,
        history=module.history, provenance=json.loads(spec.provenance) if spec.provenance else {},
    )
    curves = LearningCurvesMeasurement(module.history, network.parameter_count())
    measured = [m for m in (factory(run_state) for factory in ctx.measurement_factories) if m is not None]
    measuring = MeasurementCallback([curves, *measured])
    callbacks = [_progress_callback(ctx.progress, every=max(steps_per_epoch // 20, 1)), measuring]
    ctx.progress.start(spec, steps_per_epoch * profile.epochs)
    record["data"] = {
        "train_examples": len(data.train_x), "val_examples": len(data.val_x),
        "test_examples": len(data.test_x), **data.info,
    }
    accelerator, trainer_devices = devices.lightning_accelerator(device)
    with _quiet_lightning():
        trainer = pl.Trainer(
            max_epochs=profile.epochs,
            accelerator=accelerator,
            devices=trainer_devices,
            logger=CSVLogger(ctx.out_dir / "logs", name=resolved.run_id, version=records.config_hash(config)),
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            log_every_n_steps=max(steps_per_epoch, 1),
            # CPU kernels are deterministic; on CUDA, device_settings asks for deterministic algorithms
            deterministic=False if device.type == "cpu" else None,
        )
        started = time.perf_counter()
        try:
            trainer.fit(module, train_dataloaders=train_blocks)
        except SystemExit as exc:
            # Lightning answers Ctrl-C by ignoring SIGINT and calling sys.exit(1): give the
            # user their Ctrl-C back and let the grid stop cleanly (no record for this run).
            if not trainer.interrupted:
                raise
            _restore_sigint()
            raise KeyboardInterrupt from exc
        finally:
            curves.wall_time_s = time.perf_counter() - started
            measuring.contribute(record["metrics"], record["metric_reasons"])


def _restore_sigint() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _progress_callback(progress: Progress, every: int) -> Any:
    """A Lightning callback reporting training progress about every ``every`` mini-batches."""
    import pytorch_lightning as pl

    class ProgressCallback(pl.Callback):
        pending = 0  # mini-batches trained but not yet reported

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.pending += len(batch)  # a block of mini-batches
            if self.pending >= every:
                progress.advance(self.pending, f"epoch {trainer.current_epoch + 1}")
                self.pending = 0

        def on_train_epoch_end(self, trainer, pl_module):
            progress.advance(self.pending, f"epoch {trainer.current_epoch + 1}")
            self.pending = 0

        def _report_val_acc(self, pl_module):
            # the module evaluates in its own on_train_epoch_end, which runs after the callbacks'
            h = pl_module.history
            if h["val_acc"] and h["val_acc"][-1] is not None:
                progress.advance(0, f"epoch {h['epoch'][-1]} val acc {h['val_acc'][-1]:.3f}")

        def on_train_epoch_start(self, trainer, pl_module):
            self._report_val_acc(pl_module)

        def on_train_end(self, trainer, pl_module):
            self._report_val_acc(pl_module)

    return ProgressCallback()
