"""Harness metrics through the real runner on MNIST (smoke profile), and the README metric table."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from biobench.metrics import MeasurementSettings
from biobench.metrics.catalog import TABLE_END, TABLE_START, definitions, metric_table
from biobench.metrics.harness import harness_measurement
from biobench.plugin_api.registry import load_registry
from biobench.results import records
from biobench.training import runner

REPO = Path(__file__).resolve().parents[1]

HARNESS_KEYS = {
    "gradient_bias", "gradient_bias_curve", "update_angle_deg", "update_variance", "feedback_angle_deg",
    "feedback_angle_curve", "signal_angle_deg", "signal_angle_curve", "fgsm_acc", "fgsm_drop", "fgsm_ci95",
    "fgsm_examples", "gradient_reference", "harness_settings", "harness_metrics_time_s",
}


def _run(tmp_path, data_dir, factories, rule="backprop"):
    ctx = runner.RunContext(
        registry=load_registry(disable=[], only=[]), out_dir=tmp_path, data_dir=data_dir,
        measurement_factories=factories,
    )
    (spec,) = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], [rule], [0], "smoke")
    runner.execute(spec, ctx)
    return records.read_record(ctx.record_path(spec))


def test_the_runner_measures_the_harness_metrics_by_default():
    assert harness_measurement in runner.default_measurement_factories()


@pytest.mark.slow
def test_a_smoke_run_records_every_harness_metric(tmp_path, data_dir):
    # FGSM on the whole smoke test split (1000 examples), so perturbation 0 must be its accuracy
    whole_test_split = MeasurementSettings(fgsm_examples=1000, fgsm_chunk=1000)
    record = _run(tmp_path / "with", data_dir, [partial(harness_measurement, settings=whole_test_split)])
    m = record["metrics"]
    assert record["status"] == "ok" and HARNESS_KEYS <= set(m)
    # backprop judged against its own reference
    assert m["gradient_bias"]["overall"] == pytest.approx(1.0, abs=1e-9)
    assert m["update_angle_deg"]["hidden"] == pytest.approx(0.0, abs=1e-3)
    assert [(p["epoch"], p["step"]) for p in m["gradient_bias_curve"]] == [(0, 0), (1, 20)]
    assert m["update_variance"]["initial"]["snr_ratio"]["hidden"] == pytest.approx(1.0, rel=1e-5)
    backprop_snr = m["update_variance"]["initial"]["backprop"]["per_layer"]["fc1"]
    assert backprop_snr["snr"] > 10 * backprop_snr["noise_floor"]  # a real signal, far above the floor
    assert m["harness_settings"]["fgsm_examples"] == m["fgsm_examples"] == record["data"]["test_examples"] == 1000
    assert m["fgsm_acc"]["0/255"] == m["test_acc"]
    assert m["fgsm_acc"]["12/255"] < m["fgsm_acc"]["0/255"]
    assert m["fgsm_drop"]["12/255"] == pytest.approx(m["fgsm_acc"]["0/255"] - m["fgsm_acc"]["12/255"])
    assert m["feedback_angle_deg"] is None and "no feedback matrix" in record["metric_reasons"]["feedback_angle_deg"]
    assert m["signal_angle_deg"]["hidden"] == pytest.approx(0.0, abs=1e-3)
    assert m["gradient_reference"].startswith("autograd backprop")
    # accuracy, loss curve, epochs and time come from the runner; selection uses validation only
    assert m["epochs"] == 1 and len(m["history"]["train_loss"]) == 1
    assert m["best_val_epoch"] == 1 and m["test_acc_at_best_val"] == m["test_acc"]
    assert m["wall_time_s"] > m["harness_metrics_time_s"] > 0

    # the same run without measurements follows exactly the same trajectory
    plain = _run(tmp_path / "without", data_dir, [])
    assert not HARNESS_KEYS & set(plain["metrics"])
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_acc"):
        assert plain["metrics"]["history"][key] == m["history"][key], key


def test_the_readme_metric_table_is_generated_from_the_definitions():
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    text = readme.read_text()
    assert TABLE_START in text and TABLE_END in text, "README has no generated metric table"
    assert metric_table() in text, "README metric table is stale: paste `python -m biobench.metrics`"
    documented = {k for d in definitions() for k in d.keys}
    assert "best_test_acc" not in documented  # nothing is selected on the test split
    assert HARNESS_KEYS - {"gradient_reference", "harness_settings", "harness_metrics_time_s"} <= documented
