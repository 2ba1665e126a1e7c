"""The leaderboard: aggregation over seeds, rendering, --check and fresh-vs-committed comparison."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from biobench.cli import main
from biobench.metrics.robustness import fgsm_curve
from biobench.results import leaderboard as lb
from biobench.results import records

FIXTURES = Path(__file__).parent / "fixtures" / "records"

ACCURACY = next(c for c in lb.metric_columns() if c.key == "test_acc")


def make_record(
    arch: str, rule: str, seed: int, status: str = "ok", acc: float | None = 0.9,
    reference: bool = False, reason: str | None = None, reasons: dict[str, str] | None = None,
    **metrics: Any,
) -> dict[str, Any]:
    """A minimal schema-valid record."""
    ref = {"config": {}, "entry_point": "x", "distribution": "biobench", "version": "0.1.0"}
    m: dict[str, Any] = {}
    if status == "ok":
        m = {"test_acc": acc, "final_train_loss": 0.5, "epochs": 3, "time_per_epoch_s": 1.5, "parameter_count": 1000,
             "history": {}}
    m.update(metrics)
    record = {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": records.run_id(f"mnist__{arch}__{rule}__ci__seed{seed}", "0000abcd"),
        "config_hash": "0123456789abcdef",
        "task": "mnist", "architecture": arch, "rule": rule, "seed": seed, "profile": "ci",
        "config": {
            "task": dict(ref, name="mnist"), "architecture": dict(ref, name=arch),
            "rule": dict(ref, name=rule), "run": {"seed": seed},
        },
        "status": status,
        "reason": reason if reason is not None else (None if status == "ok" else f"{status} for a test"),
        "rule_flags": {"weight_transport": reference, "global_error": True, "is_reference": reference, "requires": []},
        "metrics": m,
        "metric_reasons": dict(reasons or {}),
        "environment": {"packages": {}, "git_revision": "x", "python": "3", "platform": "p"},
    }
    return records.validate_record(record)


def test_mean_and_sample_std_over_seeds():
    recs = [make_record("mlp", "fa", s, acc=a) for s, a in enumerate((0.90, 0.92, 0.94))]
    (row,) = lb.summarise(recs).to_dict(orient="records")
    assert row["test_acc_mean"] == pytest.approx(0.92)
    assert row["test_acc_std"] == pytest.approx(0.02)
    assert (row["seeds"], row["seeds_ok"], row["status"], row["reason"]) == (3, 3, "ok", "")
    assert lb.spread_text(ACCURACY, row) == "92.00 ± 2.00"


def test_single_seed_has_no_std():
    (row,) = lb.summarise([make_record("mlp", "fa", 0, acc=0.9)]).to_dict(orient="records")
    assert row["test_acc_std"] is None
    assert lb.spread_text(ACCURACY, row) == "90.00 (n=1)"


def test_diverged_seed_sets_the_status_and_is_left_out_of_the_mean():
    recs = [
        make_record("mlp", "hebb", 0, acc=0.5),
        make_record("mlp", "hebb", 1, status="diverged", reason="training loss became non-finite at epoch 1"),
        make_record("mlp", "hebb", 2, acc=0.7),
    ]
    (row,) = lb.summarise(recs).to_dict(orient="records")
    assert row["status"] == "diverged"
    assert row["reason"] == "1/3 seeds diverged: training loss became non-finite at epoch 1"
    assert row["test_acc_mean"] == pytest.approx(0.6)
    assert lb.status_text(row) == "diverged (1/3)"


def test_rows_sorted_reference_first_then_accuracy_then_unsupported():
    recs = [
        make_record("mlp", "zeta", 0, acc=0.95),
        make_record("mlp", "alpha", 0, acc=0.80),
        make_record("mlp", "backprop", 0, acc=0.90, reference=True),
        make_record("mlp", "spiky", 0, status="unsupported", reason="needs time"),
        make_record("mlp", "broken", 0, status="failed", reason="RuntimeError: boom\nTraceback..."),
        make_record("kan", "alpha", 0, acc=0.5),
    ]
    frame = lb.summarise(recs)
    assert list(zip(frame["architecture"], frame["rule"], strict=True)) == [
        ("kan", "alpha"), ("mlp", "backprop"), ("mlp", "zeta"), ("mlp", "alpha"), ("mlp", "broken"), ("mlp", "spiky"),
    ]
    broken = frame[frame["rule"] == "broken"].iloc[0]
    assert broken["reason"] == "1/1 seed failed: RuntimeError: boom"


def test_metric_columns_read_the_harness_keys():
    rec = make_record(
        "mlp", "fa", 0,
        gradient_bias={"overall": 0.75, "hidden": 0.5, "per_layer": {"fc1": 0.5, "fc2": 1.0}},
        update_variance={
            "examples": 32,
            "initial": {"rule": None, "backprop": None, "snr_ratio": {"hidden": 0.8, "per_layer": {}}},
            "final": {"rule": None, "backprop": None, "snr_ratio": {"hidden": 0.4, "per_layer": {}}},
        },
        fgsm_acc={"0/255": 0.9, "4/255": 0.7, "8/255": 0.55, "12/255": 0.3},
        fgsm_drop={"0/255": 0.0, "4/255": 0.2, "8/255": 0.35, "12/255": 0.6},
        feedback_angle_deg={"mean": 42.0, "per_layer": {"fc2": 42.0}},
        signal_angle_deg={"hidden": 50.0, "per_layer": {"fc1": 50.0, "fc2": 0.0}},
        reasons={"update_variance.initial.rule": "x", "update_variance.initial.backprop": "x",
                 "update_variance.final.rule": "x", "update_variance.final.backprop": "x"},
    )
    (row,) = lb.summarise([rec]).to_dict(orient="records")
    assert (row["gradient_bias_hidden"], row["snr_ratio_initial"], row["snr_ratio_final"]) == (0.5, 0.8, 0.4)
    assert (row["fgsm_drop_8_255"], row["feedback_angle_deg"], row["signal_angle_deg"]) == (0.35, 42.0, 50.0)
    assert fgsm_curve(rec["metrics"]) == [(0.0, 0.9), (4 / 255, 0.7), (8 / 255, 0.55), (12 / 255, 0.3)]


def test_missing_and_null_metrics_render_as_dashes_not_zero():
    rec = make_record(
        "mlp", "hebb", 0, gradient_bias=None, feedback_angle_deg=None,
        reasons={"gradient_bias": "zero update", "feedback_angle_deg": "no feedback"},
    )
    frame = lb.summarise([rec])
    (row,) = frame.to_dict(orient="records")
    assert row["gradient_bias_hidden"] is None and row["fgsm_drop_8_255"] is None
    table = lb.markdown_table([row], lb.display_columns())
    assert "| — |" in table and "0.000" not in table
    assert json.loads(lb.render_json(frame))[0]["gradient_bias_hidden"] is None
    assert lb.render_csv(frame).splitlines()[1].count(",,") >= 1


def test_plugin_strings_are_escaped_in_markdown_and_html():
    rec = make_record("mlp", "evil", 0, status="failed", reason="<script>alert(1)</script> | pipe")
    frame = lb.summarise([rec])
    md = lb.render_markdown(frame, [rec], "results")
    assert "<script>" not in md and "&lt;script&gt;" in md and "\\| pipe" in md
    page = lb.html_table(frame)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; | pipe" in page


def test_readme_block_is_replaced_between_markers_only():
    readme = f"# Title\n\nbefore\n{lb.README_START}\nold table\n{lb.README_END}\nafter\n"
    out = lb.replace_readme_block(readme, f"{lb.README_START}\nnew\n{lb.README_END}")
    assert out == f"# Title\n\nbefore\n{lb.README_START}\nnew\n{lb.README_END}\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        lb.replace_readme_block("# no markers\n", "x")


@pytest.fixture
def board(tmp_path: Path, rendered_board: Path) -> dict[str, Path]:
    """A private copy of the rendered leaderboard folder."""
    shutil.copytree(rendered_board, tmp_path, dirs_exist_ok=True)
    return {"results": tmp_path / "leaderboard" / "results", "out": tmp_path / "leaderboard", "readme": tmp_path / "README.md"}


def _args(board: dict[str, Path], *extra: str) -> list[str]:
    return ["leaderboard", "--results", str(board["results"]), "--out", str(board["out"]),
            "--readme", str(board["readme"]), *extra]


def test_fixture_records_are_valid():
    recs = records.read_records(FIXTURES)
    assert {r["status"] for r in recs} >= {"ok", "unsupported"}
    assert len({r["architecture"] for r in recs}) >= 2


def test_render_then_check_passes_and_is_deterministic(board):
    first = {name: (board["out"] / name).read_text() for name in lb.TABLE_FILES}
    readme = board["readme"].read_text()
    assert readme.startswith("# biobench\n\n## Leaderboard\n\n<!-- leaderboard:start -->")
    assert readme.endswith("<!-- leaderboard:end -->\n\nMore text.\n")
    assert main(_args(board, "--check")) == 0
    assert main(_args(board, "--no-report")) == 0
    assert {name: (board["out"] / name).read_text() for name in lb.TABLE_FILES} == first
    assert board["readme"].read_text() == readme
    rows = json.loads(first["leaderboard.json"])
    recs = records.read_records(board["results"])
    assert len(rows) == len({(r["task"], r["architecture"], r["rule"], r["profile"]) for r in recs})
    assert list(rows[0]) == list(lb.table_columns())
    for text in [*first.values(), readme, (board["out"] / "report" / "index.html").read_text()]:
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text), "rendered output must not carry dates"
    assert (board["out"] / "report" / "index.html").exists()


@pytest.mark.parametrize("target", ["LEADERBOARD.md", "leaderboard.csv", "leaderboard.json", "README", "report"])
def test_check_fails_on_a_hand_edit(board, target, capsys):
    path = {
        "README": board["readme"], "report": board["out"] / "report" / "index.html",
    }.get(target, board["out"] / target)
    text = path.read_text()
    if target == "report":
        edited = text.replace("<td>backprop (reference)</td>", "<td>backprop (reference!)</td>", 1)
    else:
        edited = text.replace("backprop", "backprob", 1)
    assert edited != text
    path.write_text(edited)
    assert main(_args(board, "--check")) == 1
    assert "stale" in capsys.readouterr().out


def test_check_fails_when_a_record_changes(board):
    path = sorted(board["results"].glob("*backprop*seed0__*.json"))[0]
    record = json.loads(path.read_text())
    record["metrics"]["test_acc"] = 0.123
    path.write_text(json.dumps(record))
    assert main(_args(board, "--check")) == 1


def test_check_fails_when_a_figure_is_missing(board):
    figure = sorted((board["out"] / "report" / "figures").glob("*.png"))[0]
    figure.unlink()
    assert main(_args(board, "--check")) == 1


def test_missing_results_folder_is_a_usage_error(tmp_path):
    assert main(["leaderboard", "--results", str(tmp_path / "nope"), "--no-readme"]) == 2


def test_compare_accepts_fresh_records_within_tolerance():
    committed = [make_record("mlp", "fa", 0, acc=0.9), make_record("mlp", "fa", 1, acc=0.9)]
    fresh = [make_record("mlp", "fa", 0, acc=0.9 + 0.9 * ACCURACY.tolerance)]
    assert lb.compare_records(fresh, committed) == []


def test_compare_reports_every_kind_of_disagreement():
    committed = [
        make_record("mlp", "fa", 0, acc=0.90, feedback_angle_deg={"mean": 40.0, "per_layer": {}}),
        make_record("mlp", "kp", 0, acc=0.90),
        make_record("mlp", "gone", 0, acc=0.90),
    ]
    fresh = [
        make_record("mlp", "fa", 0, acc=0.90 + 2 * ACCURACY.tolerance, feedback_angle_deg={"mean": 50.0, "per_layer": {}}),
        make_record("mlp", "kp", 0, status="diverged"),
        make_record("mlp", "new", 0, acc=0.5),
    ]
    problems = lb.compare_records(fresh, committed)
    text = "\n".join(problems)
    assert len(problems) == 5, text
    assert "mnist__mlp__fa__ci__seed0__0000abcd: test_acc" in text
    assert "mnist__mlp__fa__ci__seed0__0000abcd: feedback_angle_deg" in text
    assert "status diverged (fresh) vs ok (committed)" in text
    assert "mnist__mlp__new__ci__seed0__0000abcd: no committed record" in text
    assert "mnist__mlp__gone__ci__seed0__0000abcd: committed but not produced" in text


def test_compare_of_a_fresh_defaults_grid_leaves_the_tuned_track_alone():
    tuned = make_record("mlp", "fa", 0, acc=0.95)
    tuned["track"] = "tuned"
    tuned["run_id"] = records.run_id("mnist__mlp__fa__ci__seed0", "1111beef")
    committed = [make_record("mlp", "fa", 0, acc=0.9), tuned]
    assert lb.compare_records([make_record("mlp", "fa", 0, acc=0.9)], committed) == []
    fresh_tuned = dict(tuned, run_id=records.run_id("mnist__mlp__fa__ci__seed0", "2222beef"))
    problems = lb.compare_records([fresh_tuned], committed)
    assert len(problems) == 2 and "1111beef: committed but not produced" in problems[1]


def test_compare_flags_a_metric_present_on_one_side_only():
    committed = [make_record("mlp", "fa", 0, gradient_bias={"hidden": 0.5, "per_layer": {}})]
    fresh = [make_record("mlp", "fa", 0)]
    assert lb.compare_records(fresh, committed) == [
        "mnist__mlp__fa__ci__seed0__0000abcd: gradient_bias_hidden is None (fresh) vs 0.5 (committed)"
    ]


def _configured(arch, rule, seed, acc, overrides=None, track="default", reference=False):
    record = make_record(arch, rule, seed, acc=acc, reference=reference)
    record["track"] = track
    record["overrides"] = overrides or {}
    record["config"]["rule"]["config"] = dict((overrides or {}).get("rule", {}))
    return record


def test_configurations_are_rows_of_their_own_named_by_their_options():
    recs = [
        _configured("mlp", "fa", seed, 0.9) for seed in (0, 1)
    ] + [
        _configured("mlp", "fa", seed, 0.8, overrides={"rule": {"feedback_scale": 2.0}}) for seed in (0, 1)
    ]
    frame = lb.summarise(recs)
    assert list(frame["variant"]) == ["defaults", "rule.feedback_scale=2"]
    assert frame["config_id"].nunique() == 2
    assert lb.rule_text(frame.to_dict(orient="records")[1]) == "fa [rule.feedback_scale=2]"


def test_intervals_and_the_paired_comparison_with_the_reference():
    accs = {"backprop": (0.97, 0.975, 0.972, 0.971, 0.974), "fa": (0.95, 0.955, 0.951, 0.949, 0.953),
            "np": (0.969, 0.976, 0.973, 0.970, 0.975)}
    recs = [
        _configured("mlp", rule, seed, acc, reference=rule == "backprop")
        for rule, values in accs.items() for seed, acc in enumerate(values)
    ]
    rows = {r["rule"]: r for r in lb.summarise(recs).to_dict(orient="records")}
    fa = rows["fa"]
    assert fa["test_acc_ci_low"] <= fa["test_acc_mean"] <= fa["test_acc_ci_high"]
    assert 0.949 <= fa["test_acc_ci_low"] and fa["test_acc_ci_high"] <= 0.955
    assert fa["vs_reference"] == "worse" and fa["vs_reference_p"] < 0.001
    assert fa["vs_reference_diff"] == pytest.approx(-0.0208, abs=1e-6)
    assert rows["np"]["vs_reference"] == "no difference"
    assert rows["backprop"]["vs_reference"] == ""


def test_the_headline_matrices_put_rules_against_architectures_tuned_track_first():
    recs = [
        _configured("mlp", "backprop", 0, 0.97, reference=True), _configured("kan", "backprop", 0, 0.90, reference=True),
        _configured("mlp", "fa", 0, 0.95), _configured("kan", "fa", 0, 0.88),
        make_record("kan", "hebb", 0, status="unsupported", reason="needs dense"),
        _configured("mlp", "fa", 0, 0.96, track="tuned"), _configured("mlp", "backprop", 0, 0.975, track="tuned", reference=True),
    ]
    block, default_block = lb.headline(lb.summarise(recs))
    assert block["track"] == "tuned" and block["architectures"] == ["mlp"]
    assert default_block["track"] == "default" and default_block["architectures"] == ["kan", "mlp"]
    assert lb.headline(lb.summarise([r for r in recs if r.get("track") != "tuned"])) == [default_block]
    assert [row["rule"] for row in default_block["rows"]] == ["backprop", "fa", "hebb"]
    table = lb.markdown_matrix(default_block)
    assert "| fa | 88.00 | 95.00 |" in table and "| hebb |  |  |" in table


def test_compare_cli(board, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    recs = [r for r in records.read_records(board["results"]) if r["seed"] == 0]
    for r in recs:
        records.write_record(fresh / f"{r['run_id']}.json", r)
    assert main(_args(board, "--compare", str(fresh))) == 0
    changed = copy.deepcopy(next(r for r in recs if r["status"] == "ok"))
    changed["metrics"]["test_acc"] -= 0.05
    records.write_record(fresh / f"{changed['run_id']}.json", changed)
    assert main(_args(board, "--compare", str(fresh))) == 1


@pytest.mark.slow
def test_regeneration_script_refreshes_then_verifies(tmp_path, data_dir):
    """ci/regenerate_leaderboard.sh on a one-pairing grid: refresh, verify, then catch a hand edit."""
    script = Path(__file__).resolve().parents[1] / "ci" / "regenerate_leaderboard.sh"
    env = dict(
        os.environ,
        BIOBENCH=str(Path(sys.executable).with_name("biobench")),
        BIOBENCH_DATA=data_dir,
        GRID="--arch mlp --rule backprop --profile smoke --epochs 1",
        SEEDS="0",
        TUNE="--arch mlp --rule feedback_alignment --profile smoke --epochs-per-trial 1 --trials 2",
        LEADERBOARD_DIR=str(tmp_path / "board"),
        README_FILE="none",
    )

    def run(mode: str, fresh: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script), mode], env=dict(env, FRESH_DIR=str(tmp_path / fresh)),
                              capture_output=True, text=True, timeout=600)

    refreshed = run("refresh", "fresh-refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-3000:] + refreshed.stderr[-3000:]
    stored = sorted(p.name for p in (tmp_path / "board" / "results").glob("*.json"))
    assert len(stored) == 2, stored
    assert re.fullmatch(r"mnist__mlp__backprop__smoke__seed0__[0-9a-f]{8}\.json", stored[0])
    tuned = records.read_record(tmp_path / "board" / "results" / stored[1])
    assert (tuned["rule"], tuned["track"], tuned["seed"]) == ("feedback_alignment", "tuned", 0)
    assert len(list((tmp_path / "board" / "results" / "tuning").glob("*/*.json"))) == 2  # the trials
    assert (tmp_path / "board" / "LEADERBOARD.md").exists()
    verified = run("verify", "fresh-verify")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert "0mismatch(es)" in "".join(verified.stdout.split())  # the console may wrap lines
    table = tmp_path / "board" / "LEADERBOARD.md"
    table.write_text(table.read_text().replace("backprop (reference)", "backprop (reference, 99%)"))
    edited = run("verify", "fresh-edited")
    assert edited.returncode == 1
    assert "stale" in edited.stdout and not (tmp_path / "fresh-edited" / "logs").exists()
