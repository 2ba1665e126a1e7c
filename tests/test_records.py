"""The record schema: valid records pass; missing fields, NaN and unexplained nulls fail."""

from __future__ import annotations

import copy
import json

import pytest

from biobench.results import records


def _valid() -> dict:
    ref = {"name": "x", "config": {}, "entry_point": "x", "distribution": "d", "version": "1"}
    config = {"task": ref, "architecture": ref, "rule": ref, "run": {"epochs": 1}}
    return {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": "mnist__mlp__backprop__smoke__seed0",
        "config_hash": records.config_hash(config),
        "task": "mnist", "architecture": "mlp", "rule": "backprop", "seed": 0, "profile": "smoke",
        "config": config, "status": "ok", "reason": None,
        "metrics": {"test_acc": 0.9, "gradient_bias": None},
        "metric_reasons": {"gradient_bias": "all-zero update"},
        "environment": records.environment(),
    }


def test_valid_record_passes_and_roundtrips(tmp_path):
    path = tmp_path / "r.json"
    records.write_record(path, _valid())
    assert records.read_record(path)["metrics"]["test_acc"] == 0.9
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("config_hash"), "config_hash"),
        (lambda r: r.update(status="weird"), "status"),
        (lambda r: r.update(status="failed"), "reason"),
        (lambda r: r["metrics"].update(test_acc=float("nan")), "null with a reason"),
        (lambda r: r["metric_reasons"].clear(), "null without a reason"),
        (lambda r: r.update(schema_version=99), "schema_version"),
    ],
)
def test_invalid_records_are_rejected(mutate, message):
    record = copy.deepcopy(_valid())
    mutate(record)
    with pytest.raises(records.RecordError, match=message):
        records.validate_record(record)


def test_reading_a_corrupt_record_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(records.RecordError, match="bad.json"):
        records.read_record(path)
    path.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(records.RecordError, match="bad.json.*schema"):
        records.read_record(path)


def test_config_hash_is_order_independent():
    assert records.config_hash({"a": 1, "b": [1, 2]}) == records.config_hash({"b": [1, 2], "a": 1})
    assert records.config_hash({"a": 1}) != records.config_hash({"a": 2})
