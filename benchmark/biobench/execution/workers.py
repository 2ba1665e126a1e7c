"""What every executor shares: worker settings that travel as JSON, spec (de)serialisation, resume."""

from __future__ import annotations

import importlib
import json
import os
import types
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from biobench.plugin_api.registry import GROUP, PluginSource, Registry, load_registry
from biobench.training import runner


class ExecutorError(RuntimeError):
    """A grid that the chosen executor cannot run (not the failure of one pairing)."""


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """torch intra-op threads for each of ``workers`` processes sharing ``cores``: ``max(1, cores // workers)``."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return max(1, (cpu_count() if cores is None else cores) // workers)


def spec_to_dict(spec: runner.RunSpec) -> dict[str, Any]:
    """A JSON-ready dictionary of ``spec``."""
    return asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> runner.RunSpec:
    """The RunSpec of a dictionary made by :func:`spec_to_dict` (after a JSON round trip)."""
    known = {f.name for f in fields(runner.RunSpec)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown RunSpec field(s) {sorted(unknown)}")
    values = dict(data)
    for key in ("architecture_options", "rule_options", "optimizer_options", "run_options", "task_options"):
        values[key] = tuple((str(k), v) for k, v in values.get(key, ()))
    return runner.RunSpec(**values)


def split_finished(
    specs: list[runner.RunSpec], ctx: runner.RunContext
) -> tuple[dict[int, dict[str, Any]], list[tuple[int, runner.RunSpec]]]:
    """Records to skip (by position in ``specs``, marked ``skipped``) and the (position, spec) still to run."""
    done: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, runner.RunSpec]] = []
    for index, spec in enumerate(specs):
        previous = runner.existing_record(ctx, runner.resolve(spec, ctx.registry))
        if previous is None:
            todo.append((index, spec))
        else:
            done[index] = dict(previous, skipped=True)
    return done, todo


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to rebuild the parent's registry and run context; travels as JSON."""

    out_dir: str
    data_dir: str | None
    force: bool
    threads: int
    #: Entry-point names the parent did not load (disabled or outside its allow-list).
    disabled: tuple[str, ...]
    #: In-process plugin modules: (entry point, module, distribution, version).
    extra_modules: tuple[tuple[str, str, str, str], ...]
    #: The parent's plugins and names, to check that a worker loads the same ones.
    plugins: tuple[str, ...]
    names: tuple[str, ...]
    #: The run context's measurement factories, as ``module:qualified_name``.
    measurements: tuple[str, ...]

    @classmethod
    def from_context(cls, ctx: runner.RunContext, threads: int) -> WorkerSettings:
        """Settings reproducing ``ctx`` and its registry in another process."""
        registry = ctx.registry
        installed = {(ep.name, ep.value) for ep in metadata.entry_points(group=GROUP)}
        extra = []
        for source in registry.sources.values():
            if (source.entry_point, source.module) in installed:
                continue
            plugin = registry.manager.get_plugin(source.entry_point)
            if not isinstance(plugin, types.ModuleType):
                raise ExecutorError(
                    f"plugin {source.entry_point!r} ({source.distribution}) was registered in this "
                    "process and is not an importable module, so worker processes cannot load it; "
                    "install it as an entry point or run with --jobs 1"
                )
            extra.append((source.entry_point, plugin.__name__, source.distribution, source.version))
        return cls(
            out_dir=str(ctx.out_dir),
            data_dir=None if ctx.data_dir is None else str(ctx.data_dir),
            force=ctx.force,
            threads=threads,
            disabled=tuple(sorted(registry.disabled)),
            extra_modules=tuple(sorted(extra)),
            plugins=tuple(sorted(registry.sources)),
            names=registry_names(registry),
            measurements=tuple(function_reference(f) for f in ctx.measurement_factories),
        )

    def to_json(self) -> str:
        """The settings as a JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        """Settings from :meth:`to_json`."""
        data = json.loads(text)
        data["disabled"] = tuple(data["disabled"])
        data["extra_modules"] = tuple(tuple(item) for item in data["extra_modules"])
        data["plugins"] = tuple(data["plugins"])
        data["names"] = tuple(data["names"])
        data["measurements"] = tuple(data["measurements"])
        return cls(**data)

    def load_registry(self) -> Registry:
        """The registry as the parent has it; raise ExecutorError when the plugins differ."""
        extra = [
            (PluginSource(entry_point, module, distribution, version), importlib.import_module(module))
            for entry_point, module, distribution, version in self.extra_modules
        ]
        registry = load_registry(disable=self.disabled, only=(), extra_plugins=extra)
        loaded, names = tuple(sorted(registry.sources)), registry_names(registry)
        if (loaded, names) != (self.plugins, self.names):
            raise ExecutorError(
                f"worker on {os.uname().nodename} loaded plugins {list(loaded)} providing {list(names)}, "
                f"but the grid was planned with plugins {list(self.plugins)} providing {list(self.names)}; "
                "install the same biobench and plugins everywhere"
            )
        return registry

    def context(self, registry: Registry, out_dir: Path | None = None, force: bool | None = None) -> runner.RunContext:
        """A run context for this worker (``out_dir``/``force`` replaced for scratch runs)."""
        return runner.RunContext(
            registry=registry,
            out_dir=Path(self.out_dir) if out_dir is None else out_dir,
            data_dir=self.data_dir,
            force=self.force if force is None else force,
            measurement_factories=[resolve_reference(ref) for ref in self.measurements],
        )


def function_reference(function: Any) -> str:
    """``module:qualified_name`` of a module-level function; ExecutorError for anything else."""
    ref = f"{getattr(function, '__module__', None)}:{getattr(function, '__qualname__', None)}"
    try:
        found = resolve_reference(ref)
    except (ImportError, AttributeError):
        found = None
    if found is not function:
        raise ExecutorError(
            f"{function!r} is not a module-level function, so worker processes cannot import it; "
            "pass measurement factories defined at the top level of a module"
        )
    return ref


def resolve_reference(ref: str) -> Any:
    """The object named by a ``module:qualified_name`` reference."""
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def registry_names(registry: Registry) -> tuple[str, ...]:
    """Every ``kind:name`` the registry provides, sorted."""
    return tuple(sorted(f"{kind}:{name}" for kind, entries in registry.entries.items() for name in entries))


def set_threads(threads: int) -> None:
    """Limit torch to ``threads`` intra-op threads in this process."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
