"""Reliability: faults inside pairings, interrupted and killed runs, reproducibility, bad input."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

import pytest
from helpers import record_file, run_context, without_timings

from biobench import execution
from biobench.cli import main
from biobench.plugin_api import registry as reg
from biobench.plugin_api.registry import PluginSource, load_registry
from biobench.results import records
from biobench.training import runner

FAULT_RULES = '''
import torch

from biobench import Hyperparameter, LearningRule, hookimpl
from biobench_plugins.rules.backprop import Backprop


class Raises(LearningRule):
    name = "raises"
    description = "Test rule whose update raises"
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        raise RuntimeError("deliberate failure in compute_update")


class NanGradients(Backprop):
    name = "nan-grads"
    description = "Backprop whose gradients are replaced by NaN"
    is_reference = False

    def compute_update(self, x, y, loss_fn):
        loss, logits = super().compute_update(x, y, loss_fn)
        for p in self.network.plastic_parameters():
            p.grad.fill_(float("nan"))
        return loss, logits


class HugeStep(Backprop):
    name = "huge-step"
    description = "Backprop with plain SGD and a step size that overflows float32"
    is_reference = False
    optimizer = {
        "name": Hyperparameter("sgd", "test: plain steps"),
        "lr": Hyperparameter(1e38, "test: large enough for the weights to overflow"),
    }


class NeedsTime(LearningRule):
    name = "needs-time"
    description = "Test rule requiring spiking dynamics"
    requires = frozenset({"time"})
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        raise AssertionError("never called for an unsupported pairing")


@hookimpl
def biobench_register_rules():
    return [Raises, NanGradients, HugeStep, NeedsTime]
'''

SMOKE = ["--profile", "smoke", "--arch", "mlp"]


def _write_module(folder: Path, name: str, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)


@pytest.fixture
def fault_module(tmp_path, monkeypatch):
    """The FAULT_RULES module, imported from a file of this test."""
    name = f"biobench_reliability_rules_{uuid.uuid4().hex[:8]}"
    _write_module(tmp_path / "src", name, FAULT_RULES)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


@pytest.fixture
def installed(monkeypatch):
    """Fake installed entry points: ``installed({name: (module, distribution)})``."""
    real = metadata.entry_points
    extra: dict[str, tuple[str, str]] = {}

    class Dist:
        def __init__(self, name: str) -> None:
            self.name, self.version = name, "1.2.3"

    def entry_points(**kwargs):
        if kwargs.get("group") != reg.GROUP:
            return real(**kwargs)  # other libraries' lookups are left alone
        eps = list(real(**kwargs))
        for ep_name, (module, dist) in extra.items():
            eps.append(metadata.EntryPoint(ep_name, module, reg.GROUP)._for(Dist(dist)))
        return eps

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at 80 columns otherwise
    return extra.update


# ---------------------------------------------------------------- faults inside pairings


def test_failed_and_diverged_pairings_are_recorded_and_the_grid_goes_on(tmp_path, data_dir, fault_module):
    extra = [(PluginSource("reliability-rules", fault_module.__name__, "reliability-dist", "0"), fault_module)]
    ctx = run_context(tmp_path, data_dir, extra)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["raises", "nan-grads", "huge-step", "backprop"],
                             [0], "smoke")
    failed, nan, huge, ok = execution.run(specs, ctx)

    assert failed["status"] == "failed"
    assert failed["reason"].startswith("RuntimeError: deliberate failure in compute_update\nTraceback")
    assert "in compute_update" in failed["reason"]  # the traceback reaches the rule's code
    for diverged in (nan, huge):  # NaN gradients poison the weights; a huge step overflows them
        assert diverged["status"] == "diverged"
        assert diverged["metrics"]["diverged_epoch"] == 1
        assert "became non-finite at epoch 0" in diverged["reason"]
    assert ok["status"] == "ok" and ok["metrics"]["test_acc"] > 0.5  # the grid went on
    for spec in specs:
        records.read_record(ctx.record_path(spec))


def test_summary_and_exit_code_count_failed_runs(tmp_path, data_dir, capsys, fault_module, installed):
    installed({"reliability-rules": (fault_module.__name__, "reliability-dist")})
    code = main(["run", *SMOKE, "--rule", "raises,huge-step,needs-time", "--out", str(tmp_path),
                 "--data-dir", data_dir])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 runs: 1 diverged, 1 failed, 1 unsupported." in out
    assert "failed mnist__mlp__raises__smoke__seed0__" in out and ": RuntimeError: deliberate failure in compute_update" in out
    assert len(list(tmp_path.glob("*.json"))) == 3


@pytest.mark.slow
def test_same_seed_on_the_same_machine_gives_the_same_metrics(tmp_path, data_dir):
    """Twice the same smoke pairing, with every harness measurement: equal metrics (wall times aside)."""
    registry = load_registry(disable=[], only=[])
    (spec,) = runner.plan_grid(registry, ["mnist"], ["mlp"], ["backprop"], [3], "smoke")
    first = runner.execute(spec, runner.RunContext(registry, tmp_path / "a", data_dir))
    second = runner.execute(spec, runner.RunContext(registry, tmp_path / "b", data_dir))
    assert first["status"] == second["status"] == "ok"
    assert first["config_hash"] == second["config_hash"]
    assert len(first["metrics"]) > 10  # the harness measurements are part of the comparison
    assert without_timings(first["metrics"]) == without_timings(second["metrics"])
    assert first["metric_reasons"] == second["metric_reasons"]
    other_seed = runner.execute(
        runner.RunSpec(spec.task, spec.architecture, spec.rule, 4, spec.profile),
        runner.RunContext(registry, tmp_path / "c", data_dir, measurement_factories=[]),
    )
    assert other_seed["metrics"]["history"]["train_loss"] != first["metrics"]["history"]["train_loss"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--arch", "mpl", "--rule", "backprop"], "unknown architecture 'mpl'. Did you mean 'mlp'?"),
        (["--arch", "mlp", "--rule", "bakprop"], "unknown rule 'bakprop'. Did you mean 'backprop'?"),
        (["--all", "--task", "mnsit"], "unknown task 'mnsit'. Did you mean 'mnist'?"),
        (["--all", "--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["--all", "--seeds", "-1"], "--seeds must be non-negative, got [-1]"),
        (["--all", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--all", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--all", "--rule-option", "lr"], "option 'lr' must look like key=value"),
        (["--all", "--address", "auto"], "--address names a Ray cluster: use it with --executor ray"),
        ([], "say what to run"),
    ],
)
def test_bad_input_gets_one_clear_message_and_exit_2(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.setenv("COLUMNS", "400")
    out = tmp_path / "results"
    assert main(["run", "--profile", "smoke", "--out", str(out), *arguments]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert errors == [f"error: {errors[0][len('error: '):]}"] and message in errors[0]
    assert "Traceback" not in captured.err + captured.out
    assert not list(out.glob("*.json")) if out.exists() else True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--profile", "nope"], "invalid choice: 'nope'"),
        (["--jobs", "two"], "invalid int value: 'two'"),
        (["--executor", "dask"], "invalid choice: 'dask'"),
    ],
)
def test_malformed_options_are_rejected_by_the_parser(capsys, arguments, message):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--all", *arguments])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_results_folder_that_cannot_be_created_is_one_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["run", *SMOKE, "--rule", "backprop", "--out", str(blocker / "results")]) == 2
    err = capsys.readouterr().err
    assert f"cannot create results folder {blocker / 'results'}" in err.replace("\n", "")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_results_folder_that_is_not_writable_is_one_error(tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["run", *SMOKE, "--rule", "backprop", "--out", str(folder)]) == 2
    finally:
        folder.chmod(0o700)
    assert f"results folder {folder} is not writable" in capsys.readouterr().err.replace("\n", "")


RECORD_NAME = "mnist__mlp__backprop__smoke__seed0__0123abcd.json"


def test_a_record_failing_the_schema_is_named_when_read(tmp_path):
    path = tmp_path / RECORD_NAME
    path.write_text(json.dumps({"schema_version": records.SCHEMA_VERSION, "run_id": "x"}))
    with pytest.raises(records.RecordError) as info:
        records.read_records(tmp_path)
    assert str(path) in str(info.value) and "does not match schema" in str(info.value)


def test_records_are_read_as_json_only(tmp_path):
    import pickle

    path = tmp_path / RECORD_NAME
    path.write_bytes(pickle.dumps({"status": "ok"}))
    with pytest.raises(records.RecordError, match="cannot be read as JSON"):
        records.read_record(path)


@pytest.mark.parametrize(
    "content",
    ["{ truncated", json.dumps({"status": "great", "run_id": "x"}), "RECORD_WITH_TEST_ACC_1.7"],
)
def test_an_invalid_record_at_a_runs_path_is_moved_aside_and_the_run_done_again(
    tmp_path, capsys, fault_module, installed, content
):
    installed({"reliability-rules": (fault_module.__name__, "reliability-dist")})
    command = ["run", *SMOKE, "--rule", "needs-time", "--out", str(tmp_path)]
    assert main(command) == 0
    path = record_file(tmp_path, "mnist__mlp__needs-time__smoke__seed0")
    if content == "RECORD_WITH_TEST_ACC_1.7":  # valid JSON and schema, an impossible value
        record = json.loads(path.read_text())
        record.update(status="ok", reason=None, metrics={"test_acc": 1.7, "epochs": 1, "history": {}})
        content = json.dumps(record)
    path.write_text(content)
    capsys.readouterr()
    assert main(command) == 0
    out = capsys.readouterr().out.replace("\n", "")
    (moved,) = tmp_path.glob(f"{path.name}.invalid-*")
    assert moved.read_text() == content  # kept, not destroyed
    assert "moved it to" in out and moved.name in out and "skipped" not in out
    assert records.read_record(path)["status"] == "unsupported"  # replaced by a valid record
    assert main(command) == 0  # control: a valid record is trusted and skipped
    assert "skipped (record exists)" in capsys.readouterr().out


def test_broken_plugins_are_named_and_the_others_still_run(tmp_path, capsys, fault_module, installed, monkeypatch):
    _write_module(tmp_path / "src", "biobench_raises_at_import", "raise RuntimeError('boom at import')\n")
    _write_module(
        tmp_path / "src",
        "biobench_returns_garbage",
        "from biobench import hookimpl\n\n\n@hookimpl\ndef biobench_register_rules():\n    return [42]\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    installed({
        "reliability-rules": (fault_module.__name__, "reliability-dist"),
        "raises-at-import": ("biobench_raises_at_import", "dist-import-boom"),
        "returns-garbage": ("biobench_returns_garbage", "dist-garbage"),
    })
    out = tmp_path / "results"
    code = main(["run", *SMOKE, "--rule", "needs-time", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "plugin raises-at-import (dist-import-boom) not loaded: import failed: RuntimeError: boom at import" in printed
    assert "plugin returns-garbage (dist-garbage) not loaded: biobench_register_rules: returned 42" in printed
    assert "2 plugin(s) could not be loaded" in printed
    assert records.read_record(record_file(out, "mnist__mlp__needs-time__smoke__seed0"))["status"] == "unsupported"


def test_only_installed_and_allowed_entry_points_are_loaded(tmp_path, capsys, monkeypatch, fault_module):
    # Importable and full of hooks, but not an installed entry point: never loaded.
    assert "raises" not in load_registry(disable=[], only=[]).rules
    monkeypatch.setenv(reg.ONLY_ENV, "mnist,mlp,layer_chain")
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["run", *SMOKE, "--rule", "backprop", "--out", str(tmp_path)]) == 2
    assert "unknown rule 'backprop'" in capsys.readouterr().err
    monkeypatch.delenv(reg.ONLY_ENV)
    monkeypatch.setenv(reg.DISABLE_ENV, "backprop")
    assert main(["run", *SMOKE, "--rule", "backprop", "--out", str(tmp_path)]) == 2
    assert "unknown rule 'backprop'" in capsys.readouterr().err


# ---------------------------------------------------------------- interrupted and killed runs


class _Run:
    """A real ``biobench run`` subprocess, tagged so that its worker processes can be found."""

    def __init__(self, out: Path, data_dir: str, seeds: int, jobs: int) -> None:
        self.tag = uuid.uuid4().hex
        env = dict(os.environ, BIOBENCH_TEST_RUN_TAG=self.tag, BIOBENCH_DATA=data_dir)
        command = [
            sys.executable, "-m", "biobench.cli", "run", *SMOKE, "--rule", "backprop", "--out", str(out),
            "--jobs", str(jobs), "--seeds", *[str(s) for s in range(seeds)],
        ]
        self.out = out
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )

    def ctrl_c(self) -> None:
        """SIGINT to the run's whole process group, as a terminal's Ctrl-C does."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait_for_records(self, count: int, timeout: float = 300) -> None:
        """Wait until the results folder holds ``count`` records (or fail)."""
        deadline = time.monotonic() + timeout
        while len(list(self.out.glob("*.json"))) < count:
            assert self.process.poll() is None, f"the run ended early:\n{self.process.stdout.read()}"
            assert time.monotonic() < deadline, f"no {count} records after {timeout} s"
            time.sleep(0.05)

    def processes(self) -> dict[int, int]:
        """pid -> parent pid of every live process carrying this run's tag (the run and its workers)."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if f"BIOBENCH_TEST_RUN_TAG={self.tag}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":  # not a zombie
                found[int(entry.name)] = int(fields[1])
        return found

    def workers(self) -> list[int]:
        """Live worker processes of the run (not multiprocessing's resource tracker)."""
        found = []
        for pid, parent in self.processes().items():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if parent == self.process.pid and b"spawn_main" in command:
                found.append(pid)
        return found

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Exit code and output of the run."""
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def wait_until_gone(self, timeout: float = 60) -> None:
        """Wait until no process of the run (workers included) is left."""
        deadline = time.monotonic() + timeout
        while self.processes():
            assert time.monotonic() < deadline, f"processes left behind: {self.processes()}"
            time.sleep(0.1)


@pytest.fixture
def start_run(data_dir):
    """Start ``_Run``s; any process group still alive at the end of the test is killed."""
    started: list[_Run] = []

    def start(out: Path, seeds: int, jobs: int) -> _Run:
        started.append(_Run(out, data_dir, seeds, jobs))
        return started[-1]

    yield start
    for run in started:
        try:
            os.killpg(run.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run.process.wait()


def _check_folder(out: Path, killed_writers: bool = False) -> dict[str, int]:
    """Every record valid; returns run id -> mtime of the records.

    No temporary record file may be left, except right after a writer was killed with
    SIGKILL (it cannot clean up); the next run removes those (checked after it).
    """
    if not killed_writers:
        assert list(out.glob(".*.tmp")) == [], "a temporary record file was left behind"
    return {p.stem: p.stat().st_mtime_ns for p in out.glob("*.json") if records.read_record(p)}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finding worker processes needs /proc")
def test_ctrl_c_stops_a_sequential_grid_cleanly_and_the_next_run_resumes(tmp_path, start_run):
    out = tmp_path / "results"
    first = start_run(out, seeds=3, jobs=1)
    first.wait_for_records(1)
    first.ctrl_c()
    code, output = first.finish()
    assert code == 130, output
    assert "interrupted" in output and "run the same command again to resume" in output
    before = _check_folder(out)
    assert 1 <= len(before) < 3

    code, output = start_run(out, seeds=3, jobs=1).finish()
    assert code == 0, output
    after = _check_folder(out)
    assert len(after) == 3
    assert all(after[run] == mtime for run, mtime in before.items())  # finished runs were skipped
    assert output.count("skipped (record exists)") == len(before)
    assert all(records.read_record(out / f"{run}.json")["status"] == "ok" for run in after)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finding worker processes needs /proc")
def test_interrupted_and_killed_parallel_grids_leave_valid_records_and_resume(tmp_path, start_run):
    out, seeds = tmp_path / "results", 8

    # Ctrl-C: the parent stops its workers, no record for the runs they had not finished.
    run = start_run(out, seeds=seeds, jobs=2)
    run.wait_for_records(1)
    assert len(run.workers()) == 2
    run.ctrl_c()  # reaches the workers too; they leave it to the parent
    code, output = run.finish()
    assert code == 130, output
    run.wait_until_gone(timeout=30)
    done = len(_check_folder(out))
    assert 1 <= done < seeds

    # A worker killed mid-grid: the grid goes on; then the parent itself is killed.
    run = start_run(out, seeds=seeds, jobs=2)
    run.wait_for_records(done + 1)
    victim = run.workers()[0]
    os.kill(victim, signal.SIGKILL)
    at_kill = len(list(out.glob("*.json")))
    run.wait_for_records(at_kill + 1)  # a record written after the kill: the grid went on
    assert run.process.poll() is None
    run.process.kill()
    run.process.wait()
    run.wait_until_gone(timeout=60)  # orphaned workers notice and stop
    before = _check_folder(out, killed_writers=True)
    assert at_kill + 1 <= len(before) < seeds
    failed = [r for r in records.read_records(out) if r["status"] == "failed"]
    assert len(failed) <= 1  # the victim may have been between two pairings
    assert all(f"(pid {victim}) was killed by SIGKILL" in r["reason"] for r in failed)

    # The next run finishes the grid, skipping what was done and retrying what failed.
    code, output = start_run(out, seeds=seeds, jobs=2).finish()
    assert code == 0, output
    after = _check_folder(out)
    assert len(after) == seeds
    assert all(records.read_record(out / f"{r}.json")["status"] == "ok" for r in after)
    kept = {r: m for r, m in before.items() if r not in {f["run_id"] for f in failed}}
    assert all(after[r] == m for r, m in kept.items())
    assert output.count("skipped (record exists)") == len(kept)
