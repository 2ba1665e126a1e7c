"""Helpers shared by the test modules (importable because pytest puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

from typing import Any

from biobench.plugin_api.registry import load_registry
from biobench.training import runner


def run_context(out, data_dir, extra=(), **kwargs) -> runner.RunContext:
    """A run context over the installed plugins plus ``extra``, without the harness measurements
    (they are tested on their own) unless ``measurement_factories`` is given."""
    kwargs.setdefault("measurement_factories", [])
    registry = load_registry(disable=[], only=[], extra_plugins=extra)
    return runner.RunContext(registry=registry, out_dir=out, data_dir=data_dir, **kwargs)


def _measured_by_the_machine(key: str) -> bool:
    """Wall-clock times (``*time*_s``) and memory high-water marks (``peak_rss*``): what the load decides."""
    return ("time" in key and key.endswith("_s")) or key.startswith("peak_rss")


def without_timings(value: Any) -> Any:
    """``value`` without wall-clock and memory entries (``time_per_epoch_s``, ``peak_rss_bytes``...), recursively."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not _measured_by_the_machine(k)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def record_file(folder, label: str):
    """The one record file of the run labelled ``label`` (``task__arch__rule__profile__seedN``) in ``folder``."""
    from pathlib import Path

    found = sorted(Path(folder).glob(f"{label}__*.json"))
    assert len(found) == 1, f"expected one record of {label} in {folder}, found {[p.name for p in found]}"
    return found[0]
