"""Result records: one schema-versioned JSON file per run.

Records are the source of truth; every table and plot is rendered from them. They
are written atomically (temporary file, fsync, rename) so an interrupted run
never leaves a partial record, and validated whenever they are read back: against
:data:`SCHEMA` (the record's structure) and against the metric definitions (the
type and range of every metric value, :func:`biobench.metrics.catalog.metrics_schema`).

**Identity.** A run is identified by its whole resolved configuration except the
versions of the plugins that ran it: ``run_id`` is the run's label
(``task__architecture__rule__profile__seedN``) and :func:`identity_hash` of the
configuration, so differently configured runs never share a file. ``config_hash``
covers the versions too: a run whose plugins changed version is run again.

**Device.** Where a run trained (``--accelerator``) is not part of its configuration:
the same run on a GPU and on a CPU is the same experiment, with the same ``run_id``,
``config_hash`` and leaderboard row (see :mod:`biobench.training.devices`). The record
says where it ran: ``environment.device`` (``cpu``, ``cuda:0``), ``environment.device_name``
and ``environment.precision`` (``float32``), and an explicit request is in
``overrides.run.accelerator``. Records written before these keys existed ran on the
CPU; :func:`device_of` reads them so.

**Versions.** Schema version 2 (this one) added the run identity in ``run_id``,
``overrides``, ``track``, ``data`` and the per-layer metrics; records of version 1
are read through :func:`migrate` (their old metrics are kept, and the leaderboard
shows the new columns as undefined for them).
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
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_VERSION = 2
#: ``pruned``: a tuning trial stopped early because it was hopeless (``biobench tune`` only).
STATUSES = ("ok", "diverged", "failed", "unsupported", "pruned")
TRACKS = ("default", "tuned")
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
            "properties": {
                "device": {"type": "string", "pattern": "^(cpu|cuda(:[0-9]+)?|[a-z0-9_]+(:[0-9]+)?)$"},
                "device_name": {"type": "string"},
                "precision": {"enum": ["float32"]},
            },
        },
        "started_at": {"type": "string"},
        "finished_at": {"type": "string"},
        "track": {"enum": list(TRACKS)},
        "overrides": {"type": "object", "additionalProperties": {"type": "object"}},
        "data": {"type": "object"},
        "provenance": {"type": "object"},
        "migrated_from": {"type": "integer"},
    },
    "allOf": [
        {
            "if": {"properties": {"status": {"enum": ["failed", "unsupported", "diverged", "pruned"]}}},
            "then": {"properties": {"reason": {"type": "string", "minLength": 1}}},
        },
        {
            "if": {"properties": {"status": {"const": "ok"}}},
            "then": {
                "properties": {"metrics": {"required": ["test_acc", "epochs", "history"]}},
            },
        },
    ],
}


class RecordError(ValueError):
    """A record that is not valid JSON or does not match the schema."""


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def config_hash(config: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``config`` (plugin versions included)."""
    return _digest(config)[:16]


#: Fields of a plugin reference that say which software ran, not what was run.
PROVENANCE_FIELDS = ("entry_point", "distribution", "version")


def identity(config: dict[str, Any], seed: bool = True) -> dict[str, Any]:
    """What identifies a run: its configuration without plugin provenance (and without the seed if asked)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and {"name", "config"} <= set(value):
            out[key] = {k: v for k, v in value.items() if k not in PROVENANCE_FIELDS}
        elif key == "run" and isinstance(value, dict) and not seed:
            out[key] = {k: v for k, v in value.items() if k != "seed"}
        else:
            out[key] = value
    return out


def identity_hash(config: dict[str, Any]) -> str:
    """Eight hex digits naming a run's configuration (see :func:`identity`)."""
    return _digest(identity(config))[:8]


def configuration_hash(config: dict[str, Any]) -> str:
    """Eight hex digits naming a configuration whatever its seed (a leaderboard row)."""
    return _digest(identity(config, seed=False))[:8]


def _check_numbers(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{where} is {value}; a metric that cannot be computed must be null with a reason")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_numbers(v, f"{where}[{i}]")


def _validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise RecordError(f"{what} at {path}: {exc.message}") from None


def validate_record(record: Any) -> dict[str, Any]:
    """Return ``record`` if it is valid; raise RecordError saying where it is not.

    Checked: the structure (:data:`SCHEMA`, required keys per status), every number
    finite, every null metric with a reason, and (except for records migrated from
    an older schema, whose metrics had other definitions) every metric value against
    its definition's type and range.
    """
    _validate(record, SCHEMA, f"record does not match schema v{SCHEMA_VERSION}")
    _check_numbers(record["metrics"], "metrics")
    for key, value in record["metrics"].items():
        if value is None and key not in record["metric_reasons"]:
            raise RecordError(f"metric {key!r} is null without a reason in metric_reasons")
    if not record.get("migrated_from"):
        from biobench.metrics import catalog

        _validate(record["metrics"], catalog.metrics_schema(), "a metric is outside its definition")
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


class NotARecord(RecordError):
    """A JSON file that is not a result record at all (no ``schema_version``)."""


def _load(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot be read as JSON ({exc})") from exc


def read_record(path: Path) -> dict[str, Any]:
    """Read, migrate if older, and validate one record (JSON only, never pickle)."""
    record = _load(path)
    if not isinstance(record, dict) or "schema_version" not in record:
        raise NotARecord(f"{path}: a JSON file that is not a biobench record (no schema_version)")
    if record["schema_version"] not in (1, SCHEMA_VERSION):
        raise RecordError(f"{path}: schema version {record['schema_version']!r}; this biobench reads 1 and {SCHEMA_VERSION}")
    try:
        return validate_record(migrate(record))
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def read_records(folder: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """All records (``*.json``) in ``folder``, validated, sorted by run id.

    A JSON file that is not a record at all is skipped and named through ``warn``
    (raised as :class:`NotARecord` without it); an invalid record raises RecordError.
    """
    found = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            found.append(read_record(path))
        except NotARecord as exc:
            if warn is None:
                raise
            warn(f"skipped {exc}")
    return sorted(found, key=lambda r: r["run_id"])


def now() -> str:
    """The current UTC time, ISO 8601 to the second (records' ``started_at``/``finished_at``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def rule_flags(rule_cls: type | None) -> dict[str, Any]:
    """The locality flags a record keeps of its rule class."""
    return {
        "weight_transport": getattr(rule_cls, "weight_transport", None),
        "global_error": getattr(rule_cls, "global_error", None),
        "is_reference": getattr(rule_cls, "is_reference", False),
        "family": getattr(rule_cls, "family", None),
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


def run_id(label: str, identity_digest: str) -> str:
    """The id and file stem of a record: its label and the hash of its configuration."""
    return f"{label}__{identity_digest}"


def migrate(record: dict[str, Any]) -> dict[str, Any]:
    """A schema-version-1 record in version 2's layout (metrics kept as they were), marked ``migrated_from``."""
    if not isinstance(record, dict) or record.get("schema_version") != 1:
        return record
    out = dict(record)
    run = dict(out.get("config", {}).get("run", {}))
    out["data"] = {k: run.pop(k) for k in ("train_examples", "test_examples") if k in run}
    out["config"] = {**out.get("config", {}), "run": run}
    out["schema_version"] = SCHEMA_VERSION
    out["migrated_from"] = 1
    out.setdefault("track", "default")
    out.setdefault("overrides", {})
    return out


def device_of(record: dict[str, Any]) -> str:
    """The device a record's run trained on (``cpu`` for records older than ``environment.device``)."""
    return str(record.get("environment", {}).get("device", "cpu"))


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
