"""``biobench tune``: search spaces from the declarations, the study's budget, pruning, the tuned track."""

from __future__ import annotations

import json

import optuna
import pytest

from biobench import Hyperparameter, LearningRule, LogUniform
from biobench.cli import main
from biobench.metrics.measurement import RunState, StopRun
from biobench.results import records
from biobench.tuning import space
from biobench.tuning.pruning import trial_reporter
from biobench.tuning.study import TuningBudget, open_study
from biobench_plugins.architectures.mlp import MLP

SMOKE = ["--profile", "smoke", "--arch", "mlp"]


class _Tunable(LearningRule):
    name = "test-tunable"
    description = "a rule with a tunable option and its own step size"
    weight_transport = False
    global_error = False
    defaults = {
        "scale": Hyperparameter(1.0, "test", minimum=0.0, search=LogUniform(0.1, 10.0)),
        "fixed": Hyperparameter(3, "test: not tunable"),
    }
    optimizer = {"lr": Hyperparameter(0.1, "test: the rule's own step, not searched")}

    def compute_update(self, x, y, loss_fn):
        raise AssertionError("not used")


def test_the_search_space_is_what_the_plugins_declare_tunable():
    dims = space.dimensions(MLP, _Tunable)
    assert [d.name for d in dims] == ["rule.scale"]  # the rule's own lr has no search space: not tuned
    (dim,) = dims
    dist = space.distribution(dim)
    assert isinstance(dist, optuna.distributions.FloatDistribution) and dist.log and (dist.low, dist.high) == (0.1, 10.0)
    assert space.describe(dims) == {"rule.scale": {"distribution": "log-uniform", "low": 0.1, "high": 10.0, "default": 1.0}}
    assert space.options_of({"rule.scale": 2.0, "optimizer.lr": 0.01}) == {
        "architecture": {}, "rule": {"scale": 2.0}, "optimizer": {"lr": 0.01}
    }


def test_every_rule_without_its_own_step_size_gets_the_optimisers_search_space():
    from biobench_plugins.rules.backprop import Backprop

    assert [d.name for d in space.dimensions(MLP, Backprop)] == ["optimizer.lr"]


def test_a_budget_is_checked_and_a_study_refuses_another_budget(tmp_path):
    with pytest.raises(ValueError, match="trials"):
        TuningBudget(trials=0)
    with pytest.raises(ValueError, match="trial seed"):
        TuningBudget(seeds=(0, 1000))
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    open_study("s", storage, TuningBudget(trials=3))
    open_study("s", storage, TuningBudget(trials=3, seeds=(7,)))  # other evaluation seeds: same study
    with pytest.raises(ValueError, match="another budget"):
        open_study("s", storage, TuningBudget(trials=4))


def _run_state(trial, val_acc):
    return RunState(seed=1000, network=None, rule=None, task=None, data=None, profile=None,
                    history={"val_acc": list(val_acc)}, provenance={"trial": trial} if trial else {})


def test_a_hopeless_trial_is_pruned_and_a_good_one_goes_on(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = open_study("prune", storage, TuningBudget(trials=5))
    for value in (0.8, 0.9):  # two finished trials that reached 0.8 and 0.9 after epoch 1
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    assert trial_reporter(_run_state({}, [0.5])) is None  # not a tuning run
    for val_acc, pruned in ((0.5, True), (0.95, False)):
        trial = study.ask()
        tuning = {"study": "prune", "storage": storage, "trial": trial.number, "trial_id": trial._trial_id,
                  "pruner": "median"}
        reporter = trial_reporter(_run_state(tuning, [val_acc]))
        if pruned:
            with pytest.raises(StopRun) as info:
                reporter.after_epoch(1, 10)
            assert info.value.status == "pruned" and "0.5000" in info.value.reason
        else:
            reporter.after_epoch(1, 10)


@pytest.mark.slow
def test_a_tiny_study_tunes_two_pairings_resumes_and_feeds_the_tuned_track(tmp_path, data_dir, capsys):
    command = ["tune", *SMOKE, "--rule", "backprop", "--rule", "feedback_alignment", "--trials", "3",
               "--seeds", "0", "1", "--out", str(tmp_path), "--data-dir", data_dir]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "trial 3/3" in out and "best validation" in out
    tuned = records.read_records(tmp_path)
    assert len(tuned) == 4 and all(r["track"] == "tuned" for r in tuned)
    for r in tuned:
        t = r["provenance"]["tuning"]
        assert t["trials"] == 3 and t["budget"]["trials"] == 3 and "optimizer.lr" in t["search_space"]
        assert r["overrides"]["optimizer"]["lr"] == t["options"]["optimizer"]["lr"]
        assert t["selected_on"].startswith("validation accuracy")
    trials = records.read_records(tmp_path / "tuning" / "mnist__mlp__backprop__smoke")
    assert len(trials) == 3 and all(r["seed"] == 1000 for r in trials)
    assert all(r["metrics"]["test_acc"] is None for r in trials if r["status"] == "ok")  # test split untouched
    # resume: the studies are complete and the records exist, so nothing runs again
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    assert main(command) == 0
    again = capsys.readouterr().out
    assert "trial 1/3" not in again and "3 complete" in again
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")} == written
    leaderboard = tmp_path / "board"
    assert main(["leaderboard", "--results", str(tmp_path), "--out", str(leaderboard), "--no-readme", "--no-report"]) == 0
    rows = json.loads((leaderboard / "leaderboard.json").read_text())
    assert {row["track"] for row in rows} == {"tuned"}
