"""Result records: one schema-versioned JSON file per run.

Records are the source of truth; every table and plot is rendered from them. They
are written atomically (temporary file, fsync, rename) so an interrupted run
never leaves a partial record, and validated against :data:`SCHEMA` whenever
they are read back.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed", "unsupported")
TRACKED_PACKAGES = (
    "biobench", "torch", "pytorch-lightning", "snntorch", "pykan", "pluggy", "numpy", "pandas",
)

_PLUGIN_REF = {
    "type": "object",
    "required": ["name", "config", "entry_point", "distribution", "version"],
    "properties": {
        "name": {"type": "string"},
        "config": {"type": "object"},
        "entry_point": {"type": "string"},
        "distribution": {"type": "string"},
        "version": {"type": "string"},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "biobench result record",
    "type": "object",
    "required": [
        "schema_version", "run_id", "config_hash", "task", "architecture", "rule", "seed",
        "profile", "config", "status", "reason", "metrics", "metric_reasons", "environment",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "run_id": {"type": "string", "minLength": 1},
        "config_hash": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "task": {"type": "string"},
        "architecture": {"type": "string"},
        "rule": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "profile": {"type": "string"},
        "config": {
            "type": "object",
            "required": ["task", "architecture", "rule", "run"],
            "properties": {
                "task": _PLUGIN_REF,
                "architecture": _PLUGIN_REF,
                "rule": _PLUGIN_REF,
                "run": {"type": "object"},
            },
        },
        "status": {"enum": list(STATUSES)},
        "reason": {"type": ["string", "null"]},
        "rule_flags": {"type": "object"},
        "metrics": {"type": "object"},
        "metric_reasons": {"type": "object", "additionalProperties": {"type": "string"}},
        "environment": {
            "type": "object",
            "required": ["packages", "git_revision", "python", "platform"],
        },
        "started_at": {"type": "string"},
        "finished_at": {"type": "string"},
    },
    "allOf": [
        {
            "if": {"properties": {"status": {"enum": ["failed", "unsupported", "diverged"]}}},
            "then": {"properties": {"reason": {"type": "string", "minLength": 1}}},
        }
    ],
}


class RecordError(ValueError):
    """A record that is not valid JSON or does not match the schema."""


def config_hash(config: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _check_numbers(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{where} is {value}; a metric that cannot be computed must be null with a reason")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_numbers(v, f"{where}[{i}]")


def validate_record(record: Any) -> dict[str, Any]:
    """Return ``record`` if it matches the schema; raise RecordError saying where it does not."""
    try:
        jsonschema.validate(record, SCHEMA)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise RecordError(f"record does not match schema v{SCHEMA_VERSION} at {path}: {exc.message}") from None
    _check_numbers(record["metrics"], "metrics")
    for key, value in record["metrics"].items():
        if value is None and key not in record["metric_reasons"]:
            raise RecordError(f"metric {key!r} is null without a reason in metric_reasons")
    return record


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Validate and write ``record`` to ``path`` atomically."""
    validate_record(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's process id is in the name, so a later run can tell a leftover of a
    # killed writer (no such process) from a file another process is still writing.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=2, sort_keys=True, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any]:
    """Read and validate one record (JSON only, never pickle)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot be read as JSON ({exc})") from exc
    try:
        return validate_record(record)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def read_records(folder: Path) -> list[dict[str, Any]]:
    """All records (``*.json``) in ``folder``, validated, sorted by run id."""
    return sorted((read_record(p) for p in sorted(Path(folder).glob("*.json"))), key=lambda r: r["run_id"])


def now() -> str:
    """The current UTC time, ISO 8601 to the second (records' ``started_at``/``finished_at``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def rule_flags(rule_cls: type | None) -> dict[str, Any]:
    """The locality flags a record keeps of its rule class."""
    return {
        "weight_transport": getattr(rule_cls, "weight_transport", None),
        "global_error": getattr(rule_cls, "global_error", None),
        "is_reference": getattr(rule_cls, "is_reference", False),
        "requires": sorted(getattr(rule_cls, "requires", ())),
    }


def new_record(
    run_id: str, task: str, architecture: str, rule: str, seed: int, profile: str,
    config: dict[str, Any], rule_cls: type | None,
) -> dict[str, Any]:
    """A record of status ``ok`` with empty metrics, ready to be filled by a run."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config_hash": config_hash(config),
        "task": task,
        "architecture": architecture,
        "rule": rule,
        "seed": seed,
        "profile": profile,
        "config": config,
        "status": "ok",
        "reason": None,
        "rule_flags": rule_flags(rule_cls),
        "metrics": {},
        "metric_reasons": {},
        "environment": environment(),
        "started_at": now(),
    }


def run_id(task: str, architecture: str, rule: str, profile: str, seed: int) -> str:
    """The file stem of a record: ``task__architecture__rule__profile__seedN``."""
    return f"{task}__{architecture}__{rule}__{profile}__seed{seed}"


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    versions = {}
    for name in TRACKED_PACKAGES + extra:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """The git commit of the biobench source tree (with ``-dirty`` if modified), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


def environment() -> dict[str, Any]:
    """Package versions, git revision, Python, platform and torch thread count of this process."""
    import torch

    return {
        "packages": package_versions(),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),  # floating-point sums may depend on it
    }
