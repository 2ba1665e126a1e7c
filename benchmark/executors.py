"""Run a grid of pairings in parallel: worker processes on one machine, or tasks on a Ray cluster.

Both executors keep the contract of :func:`biobench.runner.execute`: one spec gives
one record, written atomically, so an interrupted grid resumes where it stopped.
Pairings whose valid record already exists (same configuration, not ``failed``)
are skipped before anything is started.

``local`` (``biobench run --jobs N``)
    ``N`` worker processes (``spawn`` start method) each run one pairing at a time
    and write its record themselves. Each worker limits torch to
    ``max(1, cores // workers)`` intra-op threads, so ``N`` workers do not
    oversubscribe the machine's cores. Every worker rebuilds the registry from the
    installed entry points with the parent's list of disabled plugins (which
    already folds in ``$BIOBENCH_DISABLE_PLUGINS``, ``$BIOBENCH_ONLY_PLUGINS`` and
    ``--disable-plugins``) and refuses to run if it ends up with other plugins
    than the parent. Parent and workers exchange JSON messages only (specs as
    dictionaries, records as dictionaries). A worker that dies while running a
    pairing (killed, out of memory) leaves a ``failed`` record saying so, which the
    next run retries; the rest of the grid goes on in a fresh worker. Ctrl-C stops
    the workers (SIGTERM) without writing a record for the runs they had not
    finished; a worker whose parent disappears stops by itself.

``ray`` (``biobench run --executor ray [--address ADDR]``)
    Each pairing is a Ray task asking for its CPUs (and GPUs): one CPU unless the
    architecture or rule class declares a ``resources`` mapping such as
    ``{"num_cpus": 2, "num_gpus": 1}`` (the larger request of the two wins). A
    task trains in a scratch folder of its node and returns the record; the driver
    validates it and writes it to ``--out`` as soon as the task finishes, so no
    shared file system is needed and an interrupted sweep resumes. Without an
    address a local Ray instance is started with ``--jobs`` CPUs (default: all
    cores). The Lightning CSV logs of Ray tasks are not collected; the record's
    ``metrics.history`` holds the per-epoch numbers.

In-process plugins (``load_registry(extra_plugins=...)``) reach local workers only
when the plugin object is an importable module, and the run context's measurement
callback factories only when they are module-level functions (workers import them
by name).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import signal
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from biobench import records, runner
from biobench.registry import GROUP, PluginSource, Registry, load_registry

EXECUTORS = ("local", "ray")
#: A record's temporary file older than this (seconds) was left by a killed writer.
STALE_TEMP_AGE_S = 60.0
#: Seconds a stopped worker gets to exit before it is killed.
STOP_GRACE_S = 10.0


class ExecutorError(RuntimeError):
    """A grid that the chosen executor cannot run (not the failure of one pairing)."""


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """torch intra-op threads for each of ``workers`` processes sharing ``cores``: ``max(1, cores // workers)``."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return max(1, (cpu_count() if cores is None else cores) // workers)


def spec_to_dict(spec: runner.RunSpec) -> dict[str, Any]:
    """A JSON-ready dictionary of ``spec``."""
    return asdict(spec)


def spec_from_dict(data: dict[str, Any]) -> runner.RunSpec:
    """The RunSpec of a dictionary made by :func:`spec_to_dict` (after a JSON round trip)."""
    known = {f.name for f in fields(runner.RunSpec)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown RunSpec field(s) {sorted(unknown)}")
    values = dict(data)
    for key in ("architecture_options", "rule_options"):
        values[key] = tuple((str(k), v) for k, v in values.get(key, ()))
    return runner.RunSpec(**values)


def remove_stale_temp_files(folder: Path, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Delete record temporary files (``.<run>.json.*.tmp``) older than ``older_than_s``; return them.

    ``records.write_record`` removes its temporary file on any exception; only a
    process killed between creating and renaming it (SIGKILL, power loss) leaves
    one. Younger files may belong to a writer still at work and are kept.
    """
    removed = []
    now = time.time()
    for path in Path(folder).glob(".*.json.*.tmp"):
        try:
            if now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # renamed or removed by its writer meanwhile
            continue
    return removed


def failed_record(spec: runner.RunSpec, ctx: runner.RunContext, reason: str) -> dict[str, Any]:
    """A ``failed`` record for a pairing whose own process could not write one."""
    _, _, rule_cls, _, config = runner.resolve(spec, ctx.registry)
    record = runner._base_record(spec, config, rule_cls)
    record.update(status="failed", reason=reason)
    record["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return records.validate_record(record)


def split_finished(
    specs: list[runner.RunSpec], ctx: runner.RunContext
) -> tuple[dict[int, dict[str, Any]], list[tuple[int, runner.RunSpec]]]:
    """Records to skip (by position in ``specs``, marked ``skipped``) and the (position, spec) still to run."""
    done: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, runner.RunSpec]] = []
    for index, spec in enumerate(specs):
        config = runner.resolve(spec, ctx.registry)[-1]
        previous = runner.existing_record(ctx, spec, config)
        if previous is None:
            todo.append((index, spec))
        else:
            done[index] = dict(previous, skipped=True)
    return done, todo


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to rebuild the parent's registry and run context; travels as JSON."""

    out_dir: str
    data_dir: str | None
    force: bool
    threads: int
    #: Entry-point names the parent did not load (disabled or outside its allow-list).
    disabled: tuple[str, ...]
    #: In-process plugin modules: (entry point, module, distribution, version).
    extra_modules: tuple[tuple[str, str, str, str], ...]
    #: The parent's plugins and names, to check that a worker loads the same ones.
    plugins: tuple[str, ...]
    names: tuple[str, ...]
    #: The run context's measurement callback factories, as ``module:qualified_name``.
    measurements: tuple[str, ...]

    @classmethod
    def from_context(cls, ctx: runner.RunContext, threads: int) -> WorkerSettings:
        """Settings reproducing ``ctx`` and its registry in another process."""
        registry = ctx.registry
        installed = {(ep.name, ep.value) for ep in metadata.entry_points(group=GROUP)}
        extra = []
        for source in registry.sources.values():
            if (source.entry_point, source.module) in installed:
                continue
            plugin = registry.manager.get_plugin(source.entry_point)
            if not isinstance(plugin, types.ModuleType):
                raise ExecutorError(
                    f"plugin {source.entry_point!r} ({source.distribution}) was registered in this "
                    "process and is not an importable module, so worker processes cannot load it; "
                    "install it as an entry point or run with --jobs 1"
                )
            extra.append((source.entry_point, plugin.__name__, source.distribution, source.version))
        return cls(
            out_dir=str(ctx.out_dir),
            data_dir=None if ctx.data_dir is None else str(ctx.data_dir),
            force=ctx.force,
            threads=threads,
            disabled=tuple(sorted(registry.disabled)),
            extra_modules=tuple(sorted(extra)),
            plugins=tuple(sorted(registry.sources)),
            names=registry_names(registry),
            measurements=tuple(function_reference(f) for f in ctx.callback_factories),
        )

    def to_json(self) -> str:
        """The settings as a JSON string."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        """Settings from :meth:`to_json`."""
        data = json.loads(text)
        data["disabled"] = tuple(data["disabled"])
        data["extra_modules"] = tuple(tuple(item) for item in data["extra_modules"])
        data["plugins"] = tuple(data["plugins"])
        data["names"] = tuple(data["names"])
        data["measurements"] = tuple(data["measurements"])
        return cls(**data)

    def load_registry(self) -> Registry:
        """The registry as the parent has it; raise ExecutorError when the plugins differ."""
        extra = [
            (PluginSource(entry_point, module, distribution, version), importlib.import_module(module))
            for entry_point, module, distribution, version in self.extra_modules
        ]
        registry = load_registry(disable=self.disabled, only=(), extra_plugins=extra)
        loaded, names = tuple(sorted(registry.sources)), registry_names(registry)
        if (loaded, names) != (self.plugins, self.names):
            raise ExecutorError(
                f"worker on {os.uname().nodename} loaded plugins {list(loaded)} providing {list(names)}, "
                f"but the grid was planned with plugins {list(self.plugins)} providing {list(self.names)}; "
                "install the same biobench and plugins everywhere"
            )
        return registry

    def context(self, registry: Registry, out_dir: Path | None = None, force: bool | None = None) -> runner.RunContext:
        """A run context for this worker (``out_dir``/``force`` replaced for scratch runs)."""
        return runner.RunContext(
            registry=registry,
            out_dir=Path(self.out_dir) if out_dir is None else out_dir,
            data_dir=self.data_dir,
            force=self.force if force is None else force,
            callback_factories=[resolve_reference(ref) for ref in self.measurements],
        )


def function_reference(function: Any) -> str:
    """``module:qualified_name`` of a module-level function; ExecutorError for anything else."""
    ref = f"{getattr(function, '__module__', None)}:{getattr(function, '__qualname__', None)}"
    try:
        found = resolve_reference(ref)
    except (ImportError, AttributeError):
        found = None
    if found is not function:
        raise ExecutorError(
            f"{function!r} is not a module-level function, so worker processes cannot import it; "
            "pass measurement callback factories defined at the top level of a module"
        )
    return ref


def resolve_reference(ref: str) -> Any:
    """The object named by a ``module:qualified_name`` reference."""
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def registry_names(registry: Registry) -> tuple[str, ...]:
    """Every ``kind:name`` the registry provides, sorted."""
    return tuple(sorted(f"{kind}:{name}" for kind, entries in registry.entries.items() for name in entries))


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


# ---------------------------------------------------------------- local worker processes


def _send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message, allow_nan=False).encode())


def _receive(conn: Connection) -> dict[str, Any]:
    return json.loads(conn.recv_bytes().decode())


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _watch_parent(parent_pid: int, interval_s: float = 1.0) -> None:
    """Stop this worker (SIGTERM to itself) when its parent process has gone."""

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="biobench-parent-watch", daemon=True).start()


def worker_main(conn: Connection, settings_json: str, parent_pid: int) -> None:
    """Body of a local worker process: run the specs the parent sends, one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent while it started this process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _watch_parent(parent_pid)
    try:
        settings = WorkerSettings.from_json(settings_json)
        _set_threads(settings.threads)
        try:
            registry = settings.load_registry()
        except Exception as exc:
            _send(conn, {"event": "fatal", "error": f"{type(exc).__name__}: {exc}"})
            return
        ctx = settings.context(registry)
        _send(conn, {"event": "ready", "pid": os.getpid()})
        while True:
            try:
                message = _receive(conn)
            except EOFError:
                return
            if message.get("stop"):
                return
            spec = spec_from_dict(message["spec"])
            try:
                record = runner.execute(spec, ctx)
            except Exception as exc:  # execute records a pairing's errors; this is the harness's own
                _send(conn, {
                    "event": "error", "run_id": spec.run_id,
                    "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
                })
                continue
            _send(conn, {"event": "finish", "run_id": spec.run_id, "record": record})
    except (KeyboardInterrupt, SystemExit, BrokenPipeError):
        return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    job: tuple[int, runner.RunSpec] | None = None
    dispatched_at: float = 0.0


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def run_local(
    specs: list[runner.RunSpec], ctx: runner.RunContext, jobs: int, threads: int | None = None
) -> list[dict[str, Any]]:
    """Run ``specs`` in ``jobs`` worker processes; records in the order of ``specs``.

    Each worker uses ``threads`` torch threads (default :func:`threads_per_worker`).
    """
    import multiprocessing

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    results, todo = split_finished(specs, ctx)
    for index in sorted(results):
        ctx.progress.finish(specs[index], results[index])
    if not todo:
        return [results[i] for i in range(len(specs))]
    n_workers = min(jobs, len(todo))
    settings = WorkerSettings.from_context(ctx, threads or threads_per_worker(n_workers)).to_json()
    mp = multiprocessing.get_context("spawn")
    queue = deque(todo)
    workers: list[_Worker] = []

    def start_worker() -> _Worker:
        parent_end, child_end = mp.Pipe(duplex=True)
        process = mp.Process(
            target=worker_main, args=(child_end, settings, os.getpid()), name="biobench-worker", daemon=True
        )
        with _sigint_blocked():  # the child inherits the mask: no Ctrl-C traceback while it imports
            process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        workers.append(worker)
        return worker

    def dispatch(worker: _Worker) -> None:
        worker.job = queue.popleft() if queue else None
        worker.dispatched_at = time.time()
        try:
            _send(worker.conn, {"spec": spec_to_dict(worker.job[1])} if worker.job else {"stop": True})
        except OSError:  # the worker died meanwhile; its sentinel tells how
            if worker.job is not None:
                queue.appendleft(worker.job)
                worker.job = None

    def finished(index: int, spec: runner.RunSpec, record: dict[str, Any]) -> None:
        results[index] = record
        ctx.progress.finish(spec, record)

    def handle(worker: _Worker, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "fatal":
            raise ExecutorError(message["error"])
        if event == "ready":
            worker.ready = True
        elif event in ("finish", "error") and worker.job is not None:
            index, spec = worker.job
            if event == "finish":
                finished(index, spec, message["record"])
            else:
                raise ExecutorError(f"{spec.run_id}: the harness failed in a worker: {message['error']}")
        dispatch(worker)

    def died(worker: _Worker) -> None:
        workers.remove(worker)
        worker.conn.close()
        how = _describe_exit(worker.process.exitcode)
        if not worker.ready:
            raise ExecutorError(f"a worker process {how} while starting (see its output above)")
        if worker.job is not None:
            index, spec = worker.job
            record = _record_written_since(ctx, spec, worker.dispatched_at)
            if record is None:
                record = failed_record(
                    spec, ctx,
                    f"WorkerDied: the worker process (pid {worker.process.pid}) {how} while running this "
                    "pairing; no result was produced. The next run retries it.",
                )
                records.write_record(ctx.record_path(spec), record)
            finished(index, spec, record)
        if queue and len(workers) < n_workers:
            start_worker()

    try:
        for _ in range(n_workers):
            start_worker()
        while workers:
            by_conn = {w.conn: w for w in workers}
            by_sentinel = {w.process.sentinel: w for w in workers}
            for ready in wait(list(by_conn) + list(by_sentinel)):
                if ready in by_conn:
                    worker = by_conn[ready]
                    if worker not in workers:  # died earlier in this round
                        continue
                    try:
                        message = _receive(worker.conn)
                    except (EOFError, OSError):
                        continue  # the worker exited; its sentinel says how
                    handle(worker, message)
                else:
                    worker = by_sentinel[ready]
                    if worker not in workers:
                        continue
                    while worker.conn.poll():  # messages sent before it exited
                        try:
                            handle(worker, _receive(worker.conn))
                        except (EOFError, OSError):
                            break
                    worker.process.join()
                    died(worker)
    finally:
        _stop_workers(workers)
    missing = [specs[i].run_id for i in range(len(specs)) if i not in results]
    if missing:
        raise ExecutorError(f"the workers stopped before running {', '.join(missing)}")
    return [results[i] for i in range(len(specs))]


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the duration (a Ctrl-C meanwhile is delivered afterwards)."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _record_written_since(ctx: runner.RunContext, spec: runner.RunSpec, since: float) -> dict[str, Any] | None:
    """The valid record of ``spec`` if it was written at or after ``since`` (epoch seconds)."""
    path = ctx.record_path(spec)
    try:
        if path.stat().st_mtime < since:
            return None
        return records.read_record(path)
    except (FileNotFoundError, records.RecordError):
        return None


def _stop_workers(workers: list[_Worker]) -> None:
    """Stop every worker still running: SIGTERM, then SIGKILL after :data:`STOP_GRACE_S`."""
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


# ---------------------------------------------------------------- Ray


def resource_request(spec: runner.RunSpec, registry: Registry) -> dict[str, float]:
    """The Ray resources of a pairing: ``{"num_cpus": 1, "num_gpus": 0}`` raised by what its classes declare."""
    request = {"num_cpus": 1.0, "num_gpus": 0.0}
    for kind, name in (("architecture", spec.architecture), ("rule", spec.rule)):
        cls = registry.get(kind, name).cls
        declared = getattr(cls, "resources", None) or {}
        for key in request:
            value = declared.get(key, 0)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ExecutorError(f"{kind} {name!r} declares resources[{key!r}] = {value!r}; need a number >= 0")
            request[key] = max(request[key], float(value))
    return request


_TASK_REGISTRIES: dict[str, Registry] = {}


def ray_pairing_task(spec_data: dict[str, Any], settings_json: str) -> dict[str, Any]:
    """Body of a Ray task: train one pairing in a scratch folder and return its record."""
    import tempfile

    settings = WorkerSettings.from_json(settings_json)
    _set_threads(settings.threads)
    registry = _TASK_REGISTRIES.get(settings_json)  # Ray reuses worker processes: load once each
    if registry is None:
        registry = _TASK_REGISTRIES[settings_json] = settings.load_registry()
    spec = spec_from_dict(spec_data)
    with tempfile.TemporaryDirectory(prefix="biobench-") as scratch:
        record = runner.execute(spec, settings.context(registry, out_dir=Path(scratch), force=True))
    record.pop("skipped", None)
    return record


def run_ray(
    specs: list[runner.RunSpec],
    ctx: runner.RunContext,
    address: str | None = None,
    jobs: int | None = None,
) -> list[dict[str, Any]]:
    """Run ``specs`` as Ray tasks; the driver writes each record as its task finishes."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("the ray executor needs Ray: pip install 'biobench[ray]'") from None
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    results, todo = split_finished(specs, ctx)
    for index in sorted(results):
        ctx.progress.finish(specs[index], results[index])
    if not todo:
        return [results[i] for i in range(len(specs))]
    requests = {index: resource_request(spec, ctx.registry) for index, spec in todo}
    settings = WorkerSettings.from_context(ctx, threads=1)
    if settings.extra_modules:
        raise ExecutorError(
            f"in-process plugins {[m[0] for m in settings.extra_modules]} cannot reach Ray workers; "
            "install them as entry points"
        )
    started_here = not ray.is_initialized()
    if started_here:
        _init_ray(ray, address, jobs)
    task = ray.remote(ray_pairing_task)
    queue = deque(todo)
    in_flight: dict[Any, tuple[int, runner.RunSpec]] = {}
    limit = jobs or len(todo)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                index, spec = queue.popleft()
                request = requests[index]
                task_settings = WorkerSettings(**{**asdict(settings), "threads": max(1, int(request["num_cpus"]))})
                ref = task.options(
                    num_cpus=request["num_cpus"], num_gpus=request["num_gpus"], max_retries=1, name=spec.run_id
                ).remote(spec_to_dict(spec), task_settings.to_json())
                in_flight[ref] = (index, spec)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                index, spec = in_flight.pop(ref)
                record = _collect_ray_result(ray, ref, spec, ctx)
                records.write_record(ctx.record_path(spec), record)
                results[index] = record
                ctx.progress.finish(spec, record)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return [results[i] for i in range(len(specs))]


def _init_ray(ray: Any, address: str | None, jobs: int | None) -> None:
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=jobs or cpu_count(), include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise ExecutorError(f"cannot connect to {where}: {exc}") from None


def _collect_ray_result(ray: Any, ref: Any, spec: runner.RunSpec, ctx: runner.RunContext) -> dict[str, Any]:
    """The validated record a task returned, or a ``failed`` record saying why there is none."""
    try:
        record = ray.get(ref)
    except ray.exceptions.RayError as exc:
        return failed_record(spec, ctx, f"RayTaskFailed: {type(exc).__name__}: {exc}")
    try:
        records.validate_record(record)
    except records.RecordError as exc:
        return failed_record(spec, ctx, f"InvalidRecord: the Ray task returned a record that {exc}")
    if record.get("run_id") != spec.run_id:
        return failed_record(spec, ctx, f"InvalidRecord: the Ray task returned run {record.get('run_id')!r}")
    return record


# ---------------------------------------------------------------- dispatch


def run(
    specs: list[runner.RunSpec],
    ctx: runner.RunContext,
    executor: str = "local",
    jobs: int | None = None,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``specs`` with ``executor`` (``local`` with ``jobs`` processes, or ``ray``)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if executor == "local" and address:
        raise ValueError("an address is only used by the ray executor")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(ctx.out_dir)
    if executor == "ray":
        return run_ray(specs, ctx, address=address, jobs=jobs)
    if (jobs or 1) == 1:
        return [runner.execute(spec, ctx) for spec in specs]
    return run_local(specs, ctx, jobs or 1)

