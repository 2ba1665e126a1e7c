"""Local worker processes (``biobench run --jobs N``).

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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from biobench.execution.workers import (
    ExecutorError,
    WorkerSettings,
    set_threads,
    spec_from_dict,
    spec_to_dict,
    split_finished,
    threads_per_worker,
)
from biobench.training import runner

#: Seconds a stopped worker gets to exit before it is killed.
STOP_GRACE_S = 10.0


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
        set_threads(settings.threads)
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
                    "event": "error", "run_id": spec.label,
                    "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
                })
                continue
            _send(conn, {"event": "finish", "run_id": record["run_id"], "record": record})
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
                raise ExecutorError(f"{spec.label}: the harness failed in a worker: {message['error']}")
        dispatch(worker)

    def died(worker: _Worker) -> None:
        workers.remove(worker)
        worker.conn.close()
        how = _describe_exit(worker.process.exitcode)
        if not worker.ready:
            raise ExecutorError(f"a worker process {how} while starting (see its output above)")
        if worker.job is not None:
            index, spec = worker.job
            record = ctx.store.written_since(runner.resolve(spec, ctx.registry).run_id, worker.dispatched_at)
            if record is None:
                record = runner.failed_record(
                    spec, ctx.registry,
                    f"WorkerDied: the worker process (pid {worker.process.pid}) {how} while running this "
                    "pairing; no result was produced. The next run retries it.",
                )
                ctx.store.write(record)
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
    missing = [specs[i].label for i in range(len(specs)) if i not in results]
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
