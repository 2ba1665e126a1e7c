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
        "metrics": {"test_acc": 0.9, "epochs": 1, "history": {"epoch": [1], "test_acc": [0.9]}, "gradient_bias": None},
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
        (lambda r: r["metrics"].update(test_acc=1.7), "test_acc: 1.7 is greater than the maximum of 1"),
        (lambda r: r["metrics"].update(test_acc="very high"), "test_acc: 'very high' is not valid"),
        (lambda r: r.update(metrics={}), "'test_acc' is a required property"),
        (lambda r: r["metrics"]["history"].update(test_acc=[-0.5]), "history/test_acc/0"),
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


def test_a_version_1_record_is_read_through_the_migration(tmp_path):
    old = _valid()
    old["schema_version"] = 1
    old["config"]["run"]["train_examples"] = 55000
    old["metrics"]["gradient_bias"] = {"overall": 0.5, "hidden": 0.4, "per_layer": {"fc1": 0.4}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    record = records.read_record(path)
    assert record["schema_version"] == records.SCHEMA_VERSION and record["migrated_from"] == 1
    assert record["data"] == {"train_examples": 55000} and "train_examples" not in record["config"]["run"]
    assert record["track"] == "default"


def test_json_files_that_are_not_records_are_skipped_with_a_warning(tmp_path):
    records.write_record(tmp_path / "good.json", _valid())
    (tmp_path / "notes.json").write_text(json.dumps({"comment": "not a record"}))
    warnings = []
    found = records.read_records(tmp_path, warn=warnings.append)
    assert len(found) == 1 and len(warnings) == 1 and "notes.json" in warnings[0]
    with pytest.raises(records.NotARecord):
        records.read_records(tmp_path)


def test_identity_ignores_plugin_versions_but_not_options():
    config = copy.deepcopy(_valid()["config"])
    newer = copy.deepcopy(config)
    newer["rule"]["version"] = "2"
    changed = copy.deepcopy(config)
    changed["rule"]["config"] = {"feedback_scale": 2.0}
    other_seed = copy.deepcopy(config)
    other_seed["run"]["seed"] = 1
    assert records.identity_hash(newer) == records.identity_hash(config)
    assert records.config_hash(newer) != records.config_hash(config)
    assert records.identity_hash(changed) != records.identity_hash(config)
    assert records.identity_hash(other_seed) != records.identity_hash(config)
    assert records.configuration_hash(other_seed) == records.configuration_hash(config)
