"""The biobench command: plugin listing, runs, unknown names and bad options."""

from __future__ import annotations

import json

import pytest

from biobench import cli
from biobench.results import records


def test_plugins_json_lists_builtins_with_distribution(capsys):
    assert cli.main(["plugins", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rules = {r["name"]: r for r in payload["rule"]}
    assert rules["backprop"]["distribution"] == "biobench"
    assert rules["backprop"]["description"]
    assert {a["name"] for a in payload["architecture"]} >= {"mlp"}
    assert {t["name"] for t in payload["task"]} >= {"mnist"}


def test_plugins_table_shows_names_and_distributions(capsys):
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "backprop" in out and "mlp" in out and "mnist" in out and "biobench" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--arch", "mlpp", "--rule", "backprop"], "Did you mean 'mlp'?"),
        (["run", "--arch", "mlp", "--rule", "bakprop"], "Did you mean 'backprop'?"),
        (["run", "--arch", "mlp", "--rule", "backprop", "--task", "mnsit"], "Did you mean 'mnist'?"),
        (["run", "--arch", "nothing-like-it"], "Known architectures: "),
        (["run"], "say what to run"),
        (["run", "--all", "--epochs", "0"], "--epochs must be at least 1"),
        (["run", "--all", "--seeds", "-1"], "--seeds must be non-negative"),
        (["run", "--all", "--rule-option", "novalue"], "key=value"),
    ],
)
def test_bad_input_gets_one_clear_message_and_exit_2(argv, expected, capsys, tmp_path):
    code = cli.main([*argv, "--out", str(tmp_path)] if argv[1:] else argv)
    assert code == 2
    err = capsys.readouterr().err
    assert expected in " ".join(err.split())


def test_unknown_rule_option_is_a_usage_error(tmp_path, capsys, data_dir):
    code = cli.main(
        ["run", "--arch", "mlp", "--rule", "backprop", "--rule-option", "momentum=0.9",
         "--profile", "smoke", "--out", str(tmp_path), "--data-dir", data_dir]
    )
    assert code == 2
    assert "momentum" in capsys.readouterr().err


def test_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = cli.main(["run", "--arch", "mlp", "--rule", "backprop", "--out", str(blocker / "sub")])
    assert code == 2
    assert "cannot create results folder" in capsys.readouterr().err


def test_run_smoke_writes_record_and_summary(tmp_path, capsys, data_dir, monkeypatch):
    monkeypatch.setattr("biobench.training.runner.default_measurement_factories", lambda: [])
    code = cli.main(
        ["run", "--arch", "mlp", "--rule", "backprop", "--profile", "smoke", "--out", str(tmp_path),
         "--data-dir", data_dir, "--arch-option", "hidden=[32]"]
    )
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    record = records.read_record(path)
    assert record["config"]["architecture"]["config"]["hidden"] == [32]
    assert record["metrics"]["parameter_count"] == 784 * 32 + 32 + 32 * 10 + 10
    assert "1 runs: 1 ok" in capsys.readouterr().out
