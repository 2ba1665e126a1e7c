"""Executors: worker settings, JSON transport, the local process pool and a local Ray instance."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
from importlib import metadata

import pytest
import torch
from helpers import run_context, without_timings

from biobench import execution
from biobench.cli import main
from biobench.execution import local as executors_local
from biobench.execution import ray_cluster
from biobench.execution import workers as executors
from biobench.plugin_api import registry as reg
from biobench.plugin_api.registry import PluginSource, load_registry
from biobench.results import records
from biobench.results.store import STALE_TEMP_AGE_S, ResultStore
from biobench.training import runner

# Rules for the tests, written to a module file so that spawned worker processes can import it.
FAULT_RULES = '''
import os
import signal

import torch

from biobench import Hyperparameter, LearningRule, hookimpl
from biobench_plugins.rules.backprop import Backprop
from biobench_plugins.architectures.mlp import MLP


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


class KillsItsProcess(LearningRule):
    name = "kills-process"
    description = "Test rule that kills the process running it with SIGKILL"
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        os.kill(os.getpid(), signal.SIGKILL)


class NeedsTime(LearningRule):
    name = "needs-time"
    description = "Test rule requiring spiking dynamics"
    requires = frozenset({"time"})
    weight_transport = False
    global_error = False

    def compute_update(self, x, y, loss_fn):
        raise AssertionError("never called for an unsupported pairing")


class GpuMLP(MLP):
    name = "gpu-mlp"
    description = "MLP declaring a Ray resource request"
    resources = {"num_cpus": 2, "num_gpus": 1}


class BadResources(MLP):
    name = "bad-resources-mlp"
    description = "MLP declaring a negative CPU request"
    resources = {"num_cpus": -1}


@hookimpl
def biobench_register_rules():
    return [Raises, NanGradients, KillsItsProcess, NeedsTime]


@hookimpl
def biobench_register_architectures():
    return [GpuMLP, BadResources]
'''


@pytest.fixture
def fault_plugin(tmp_path, monkeypatch):
    """The FAULT_RULES module, importable here and in spawned workers, as an extra plugin."""
    folder = tmp_path / "plugin_src"
    folder.mkdir()
    name = f"biobench_fault_rules_{os.getpid()}_{time.monotonic_ns()}"
    (folder / f"{name}.py").write_text(FAULT_RULES)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(name)
    yield [(PluginSource("test-faults", name, "test-faults-dist", "0.0"), module)]
    sys.modules.pop(name, None)


def test_spec_travels_as_json_and_comes_back_equal():
    spec = runner.RunSpec(
        "mnist", "mlp", "backprop", 3, "smoke", epochs=2, batch_size=50,
        architecture_options=(("hidden", [64, 32]),), rule_options=(("lr", 0.01),),
    )
    back = executors.spec_from_dict(json.loads(json.dumps(executors.spec_to_dict(spec))))
    assert back == spec and back.label == spec.label
    with pytest.raises(ValueError, match="unknown RunSpec field"):
        executors.spec_from_dict({**executors.spec_to_dict(spec), "model": "pickled"})


@pytest.mark.parametrize(
    ("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5)]
)
def test_threads_per_worker_never_oversubscribes(workers, cores, threads):
    assert executors.threads_per_worker(workers, cores) == threads
    assert workers * threads <= max(cores, workers)


def test_threads_per_worker_rejects_zero_workers():
    with pytest.raises(ValueError, match="at least 1"):
        executors.threads_per_worker(0, 2)


def test_workers_rebuild_the_parents_registry_not_their_environment(tmp_path, monkeypatch):
    parent = load_registry(disable=["capabilities"], only=[])
    assert "capabilities" not in parent.sources
    ctx = runner.RunContext(registry=parent, out_dir=tmp_path, measurement_factories=[])
    settings_json = executors.WorkerSettings.from_context(ctx, threads=1).to_json()
    # A worker's environment says otherwise; the parent's resolved lists win.
    monkeypatch.setenv(reg.DISABLE_ENV, "backprop")
    monkeypatch.setenv(reg.ONLY_ENV, "mnist,mlp")
    worker = executors.WorkerSettings.from_json(settings_json).load_registry()
    assert sorted(worker.sources) == sorted(parent.sources)
    assert "backprop" in worker.rules and "capabilities" not in worker.sources

    monkeypatch.delenv(reg.DISABLE_ENV)
    only = load_registry(disable=None, only=None)  # allow-list from the environment
    assert set(only.sources) == {"mnist", "mlp"}
    settings = executors.WorkerSettings.from_context(
        runner.RunContext(registry=only, out_dir=tmp_path, measurement_factories=[]), threads=1
    )
    monkeypatch.delenv(reg.ONLY_ENV)
    assert set(executors.WorkerSettings.from_json(settings.to_json()).load_registry().sources) == {"mnist", "mlp"}


def test_worker_with_other_plugins_refuses_to_run(tmp_path, monkeypatch):
    module = type(sys)("fake_extra_arch_plugin")
    exec(textwrap.dedent('''
        from biobench import hookimpl
        from biobench_plugins.architectures.mlp import MLP

        class Wide(MLP):
            name = "wide-mlp"
            description = "an MLP only the parent has"

        @hookimpl
        def biobench_register_architectures():
            return [Wide]
    '''), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    real = metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") != reg.GROUP:
            return real(**kwargs)  # other libraries' lookups are left alone
        return [*real(**kwargs), metadata.EntryPoint("wide", module.__name__, reg.GROUP)]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    parent = load_registry(disable=[], only=[])
    assert "wide-mlp" in parent.architectures
    settings = executors.WorkerSettings.from_context(
        runner.RunContext(registry=parent, out_dir=tmp_path, measurement_factories=[]), threads=1
    )
    monkeypatch.setattr(metadata, "entry_points", real)  # the worker's machine lacks the plugin
    with pytest.raises(executors.ExecutorError, match=r"loaded plugins .* but the grid was planned with"):
        settings.load_registry()


def test_in_process_plugins_reach_workers_only_as_modules(tmp_path, fault_plugin):
    settings = executors.WorkerSettings.from_context(run_context(tmp_path, None, fault_plugin), threads=1)
    assert settings.extra_modules == (("test-faults", fault_plugin[0][1].__name__, "test-faults-dist", "0.0"),)
    rebuilt = executors.WorkerSettings.from_json(settings.to_json()).load_registry()
    assert rebuilt.rules["raises"].source.distribution == "test-faults-dist"

    class Plugin:
        from biobench import hookimpl

        @hookimpl
        def biobench_register_rules(self):
            return []

    ctx = run_context(tmp_path, None, [(PluginSource("obj", "tests", "tests", "0"), Plugin())])
    with pytest.raises(executors.ExecutorError, match="not an importable module"):
        executors.WorkerSettings.from_context(ctx, threads=1)


def test_measurement_factories_travel_by_name(tmp_path):
    ctx = runner.RunContext(registry=load_registry(disable=[], only=[]), out_dir=tmp_path)
    settings = executors.WorkerSettings.from_context(ctx, threads=1)
    assert len(settings.measurements) == len(ctx.measurement_factories)
    rebuilt = executors.WorkerSettings.from_json(settings.to_json()).context(ctx.registry)
    assert rebuilt.measurement_factories == ctx.measurement_factories
    ctx.measurement_factories = [lambda run: None]
    with pytest.raises(executors.ExecutorError, match="not a module-level function"):
        executors.WorkerSettings.from_context(ctx, threads=1)


def test_temporary_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its process id now names no process
    orphan = tmp_path / f".mnist__mlp__backprop__smoke__seed0.json.{dead.pid}.abc123.tmp"
    live = tmp_path / f".mnist__mlp__backprop__smoke__seed1.json.{os.getpid()}.def456.tmp"
    unnamed_old = tmp_path / ".mnist__mlp__backprop__smoke__seed3.json.ghi789.tmp"
    unnamed_new = tmp_path / ".mnist__mlp__backprop__smoke__seed4.json.jkl012.tmp"
    record = tmp_path / "mnist__mlp__backprop__smoke__seed2.json"
    for path in (orphan, live, unnamed_old, unnamed_new, record):
        path.write_text("{")
    old = time.time() - STALE_TEMP_AGE_S - 5
    os.utime(unnamed_old, (old, old))
    os.utime(record, (old, old))
    removed = ResultStore(tmp_path).remove_stale_temp_files()
    assert sorted(removed) == sorted([orphan, unnamed_old])
    assert live.exists() and unnamed_new.exists() and record.exists()


def test_resource_requests_come_from_the_plugin_classes(tmp_path, fault_plugin):
    registry = run_context(tmp_path, None, fault_plugin).registry
    plain = runner.RunSpec("mnist", "mlp", "backprop", 0, "smoke")
    gpu = runner.RunSpec("mnist", "gpu-mlp", "backprop", 0, "smoke")
    bad = runner.RunSpec("mnist", "bad-resources-mlp", "backprop", 0, "smoke")
    assert ray_cluster.resource_request(plain, registry) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert ray_cluster.resource_request(gpu, registry) == {"num_cpus": 2.0, "num_gpus": 1.0}
    with pytest.raises(executors.ExecutorError, match=r"resources\['num_cpus'\] = -1"):
        ray_cluster.resource_request(bad, registry)


def test_unknown_executor_and_bad_jobs_are_rejected(tmp_path):
    ctx = runner.RunContext(registry=load_registry(disable=[], only=[]), out_dir=tmp_path, measurement_factories=[])
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        execution.run([], ctx, executor="dask")
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        execution.run([], ctx, jobs=0)
    with pytest.raises(ValueError, match="only used by the ray executor"):
        execution.run([], ctx, address="auto")


def test_local_workers_use_the_requested_threads(tmp_path, data_dir):
    ctx = run_context(tmp_path, data_dir)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0], "smoke")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        executors_local.run_local(specs, ctx, jobs=1, threads=0)
    (record,) = executors_local.run_local(specs, ctx, jobs=1, threads=1)
    assert record["status"] == "ok" and record["environment"]["torch_threads"] == 1


def test_cli_rejects_bad_executor_options(tmp_path, capsys):
    base = ["run", "--arch", "mlp", "--rule", "backprop", "--profile", "smoke", "--out", str(tmp_path / "r")]
    assert main([*base, "--jobs", "0"]) == 2
    assert capsys.readouterr().err == "error: --jobs must be at least 1, got 0\n"
    assert main([*base, "--address", "auto"]) == 2
    assert "use it with --executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--executor", "dask"])
    assert exc.value.code == 2
    assert "invalid choice: 'dask'" in capsys.readouterr().err


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["run", "--arch", "mlp", "--rule", "backprop", "--profile", "smoke",
                 "--out", str(tmp_path), "--executor", "ray"])
    assert code == 2
    assert "pip install 'biobench[ray]'" in capsys.readouterr().err
    assert list(tmp_path.glob("*.json")) == []


@pytest.mark.slow
def test_two_workers_run_a_grid_with_faults_and_resume(tmp_path, data_dir, fault_plugin):
    ctx = run_context(tmp_path, data_dir, fault_plugin)
    rules = ["backprop", "raises", "nan-grads", "needs-time"]
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], rules, [0], "smoke")
    finished = []
    ctx.progress = runner.Progress(finish=lambda spec, record: finished.append(spec.label))
    results = execution.run(specs, ctx, jobs=2)

    assert [r["run_id"] for r in results] == [runner.resolve(s, ctx.registry).run_id for s in specs]  # order of the specs
    assert sorted(finished) == sorted(s.label for s in specs)  # per-run progress in the parent
    ok, failed, diverged, unsupported = results
    assert ok["status"] == "ok" and ok["metrics"]["test_acc"] > 0.5
    assert failed["status"] == "failed" and "deliberate failure in compute_update" in failed["reason"]
    assert "Traceback" in failed["reason"]
    assert diverged["status"] == "diverged" and diverged["metrics"]["diverged_epoch"] == 1
    assert "non-finite at epoch 0" in diverged["reason"]
    assert unsupported["status"] == "unsupported" and "time" in unsupported["reason"]
    for spec, result in zip(specs, results, strict=True):
        assert records.read_record(ctx.record_path(spec)) == result  # the worker wrote what it returned
    assert list(tmp_path.glob(".*.tmp")) == []

    # Same seed, same thread count as a worker: the same numbers as a run in this process.
    threads = torch.get_num_threads()
    torch.set_num_threads(executors.threads_per_worker(2))
    try:
        alone = runner.execute(specs[0], run_context(tmp_path / "alone", data_dir, fault_plugin))
    finally:
        torch.set_num_threads(threads)
    assert without_timings(alone["metrics"]) == without_timings(ok["metrics"])

    # Resume: finished records are skipped without starting a worker, the failed one is retried.
    written = {s.label: ctx.record_path(s).stat().st_mtime_ns for s in specs}
    again = execution.run(specs, ctx, jobs=2)
    assert [r.get("skipped", False) for r in again] == [True, False, True, True]
    for spec in (specs[0], specs[2], specs[3]):
        assert ctx.record_path(spec).stat().st_mtime_ns == written[spec.label]
    assert again[1]["status"] == "failed" and ctx.record_path(specs[1]).stat().st_mtime_ns > written[specs[1].label]


@pytest.mark.slow
def test_a_killed_worker_leaves_a_failed_record_and_the_grid_goes_on(tmp_path, data_dir, fault_plugin):
    ctx = run_context(tmp_path, data_dir, fault_plugin)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["kills-process", "backprop"], [0], "smoke")
    # One worker: the second pairing can only run in the worker started after the first one died.
    killed, ok = executors_local.run_local(specs, ctx, jobs=1)
    assert killed["status"] == "failed"
    assert "was killed by SIGKILL while running this pairing" in killed["reason"]
    assert "next run retries it" in killed["reason"]
    assert ok["status"] == "ok" and ok["metrics"]["test_acc"] > 0.5
    for spec, result in zip(specs, (killed, ok), strict=True):
        assert records.read_record(ctx.record_path(spec)) == result
    assert list(tmp_path.glob(".*.tmp")) == []


@pytest.mark.slow
def test_ray_runs_a_smoke_grid_on_a_local_instance(tmp_path, data_dir):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'biobench[ray]')")
    ctx = run_context(tmp_path, data_dir)
    specs = runner.plan_grid(ctx.registry, ["mnist"], ["mlp"], ["backprop"], [0, 1], "smoke")
    finished = []
    ctx.progress = runner.Progress(finish=lambda spec, record: finished.append(spec.label))
    results = execution.run(specs, ctx, executor="ray", jobs=2)  # a local instance with 2 CPUs
    assert not ray.is_initialized()  # the instance it started is shut down again
    assert sorted(finished) == sorted(s.label for s in specs)
    for spec, result in zip(specs, results, strict=True):
        assert result["status"] == "ok" and result["metrics"]["test_acc"] > 0.5
        assert records.read_record(ctx.record_path(spec)) == result  # written by the driver
    assert results[0]["metrics"]["history"] != results[1]["metrics"]["history"]  # two seeds

    again = execution.run(specs, ctx, executor="ray", jobs=2)  # resumes: nothing left to submit
    assert all(r.get("skipped") for r in again)
