"""Run a grid of pairings: in this process, in worker processes on one machine, or on a Ray cluster.

Every executor keeps the contract of :func:`biobench.training.runner.execute`: one
spec gives one record, written atomically, so an interrupted grid resumes where
it stopped. Pairings whose valid record already exists (same configuration, not
``failed``) are skipped before anything is started (:class:`biobench.results.store.ResultStore`).

``local`` with ``jobs`` 1 trains in this process; with ``jobs`` > 1 in worker
processes (:mod:`biobench.execution.local`). ``ray`` runs every pairing as a Ray
task (:mod:`biobench.execution.ray_cluster`).

In-process plugins (``load_registry(extra_plugins=...)``) reach local workers only
when the plugin object is an importable module, and the run context's measurement
factories only when they are module-level functions (workers import them by name).
"""

from __future__ import annotations

from typing import Any

from biobench.execution.workers import ExecutorError
from biobench.training import runner

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "ExecutorError", "run"]


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
    ctx.store.remove_stale_temp_files()
    if executor == "ray":
        from biobench.execution.ray_cluster import run_ray

        return run_ray(specs, ctx, address=address, jobs=jobs)
    if (jobs or 1) == 1:
        return [runner.execute(spec, ctx) for spec in specs]
    from biobench.execution.local import run_local

    return run_local(specs, ctx, jobs or 1)
