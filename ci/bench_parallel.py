"""Speed-up of N parallel worker processes over one, on a grid of the ``ci`` (or ``smoke``) profile.

Each round runs the same grid, each time into a fresh temporary folder:

1. **one worker**: ``biobench``'s local executor with a single worker process that
   uses as many torch threads as each of the N parallel workers does
   (``max(1, cores // N)``, so 1 on 2 cores);
2. **N workers**: ``biobench run --jobs N``;
3. **--jobs 1** (unless ``--no-process-baseline``): the grid in this process with
   torch's own thread count, as ``biobench run`` trains by default.

It prints the wall and CPU time of each, the speed-up of N workers over one worker
(the executor's scaling, the figure the ``--min-speedup`` check uses) and over
``--jobs 1`` (what a user of this machine gains from ``--jobs N``). The two differ
because a lone torch process already spreads each matrix product over every
core: that gain is part of the ``--jobs 1`` time, and how large it is depends on
the layer sizes.

    python ci/bench_parallel.py --data-dir ../shared/datasets
    python ci/bench_parallel.py --arch mlp --min-speedup 1.6

The default grid is every architecture and rule (``biobench run --all``) in the
``ci`` profile, seed 0; pairings that are unsupported are recorded as such in no
time. Both worker runs pay for starting their processes (importing torch and
Lightning, reading MNIST: about 4 CPU seconds each); this process imports
Lightning and loads the data before any clock starts. Other programs using the
same cores make the ratios noisy: each round prints the load average (runnable
processes, 1-minute mean) before and after it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(run: Callable[[object], list[dict]], registry, data_dir: str | None) -> tuple[float, float, list[str]]:
    """Wall time (s), CPU time (s, workers included) and statuses of ``run(ctx)`` in a fresh folder."""
    from biobench.training import runner

    with tempfile.TemporaryDirectory(prefix="biobench-bench-") as folder:
        ctx = runner.RunContext(registry=registry, out_dir=Path(folder), data_dir=data_dir)
        cpu, started = _cpu_seconds(), time.perf_counter()
        results = run(ctx)
        return time.perf_counter() - started, _cpu_seconds() - cpu, [r["status"] for r in results]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when ``--min-speedup`` is given and not reached, or statuses differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", help="run profile (default: ci)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the profile's)")
    parser.add_argument("--arch", action="append", help="architecture (repeatable; default: every one)")
    parser.add_argument("--rule", action="append", help="rule (repeatable; default: every one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers to compare with one (default: 2)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the medians of the ratios are printed")
    parser.add_argument("--data-dir", default=None, help="data root holding MNIST/raw")
    parser.add_argument(
        "--min-speedup", type=float, default=None,
        help="fail (exit 1) when N workers are less than this many times faster than one worker",
    )
    parser.add_argument(
        "--no-process-baseline", action="store_true", help="skip the --jobs 1 run (this process, torch's threads)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 2 or args.repeat < 1:
        parser.error("--jobs must be at least 2 and --repeat at least 1")

    import pytorch_lightning  # noqa: F401  (imported before timing: see the module docstring)
    import torch

    from biobench.execution import local as executors
    from biobench.execution.workers import cpu_count, threads_per_worker
    from biobench.plugin_api.registry import load_registry
    from biobench.training import runner
    from biobench.training.profiles import get_profile

    registry = load_registry()
    for err in registry.errors:
        print(f"plugin {err.entry_point} ({err.distribution}) not loaded: {err.error}", file=sys.stderr)
    specs = runner.plan_grid(registry, ["mnist"], args.arch, args.rule, args.seeds, args.profile, epochs=args.epochs)
    for task in {s.task for s in specs}:
        registry.get("task", task).cls().load(args.data_dir)  # warm the data cache of this process

    cores = cpu_count()
    threads = threads_per_worker(args.jobs, cores)
    epochs = args.epochs or get_profile(args.profile).epochs
    print(f"grid: {len(specs)} runs ({args.profile} profile, {epochs} epoch(s)) on {cores} cores; "
          f"workers use {threads} torch thread(s) each; --jobs 1 uses {torch.get_num_threads()}")
    runs: dict[str, Callable] = {
        "one worker": lambda ctx: executors.run_local(specs, ctx, 1, threads=threads),
        f"{args.jobs} workers": lambda ctx: executors.run_local(specs, ctx, args.jobs),
    }
    if not args.no_process_baseline:
        runs["--jobs 1"] = lambda ctx: [runner.execute(spec, ctx) for spec in specs]
    walls: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.repeat):
        statuses = {}
        for name, run in runs.items():
            load = os.getloadavg()[0]
            wall, cpu, statuses[name] = _timed(run, registry, args.data_dir)
            walls[name].append(wall)
            print(f"round {round_ + 1}, {name:>10}: {wall:6.1f} s wall, {cpu:6.1f} CPU s "
                  f"(load average {load:.1f} -> {os.getloadavg()[0]:.1f})")
        first = next(iter(statuses.values()))
        if any(s != first for s in statuses.values()):
            print(f"statuses differ between the runs: {statuses}", file=sys.stderr)
            return 1
        print(f"  {sum(s in ('ok', 'diverged') for s in first)} trained, {first.count('unsupported')} unsupported, "
              f"{first.count('failed')} failed")
    parallel = f"{args.jobs} workers"
    scaling = statistics.median(o / p for o, p in zip(walls["one worker"], walls[parallel], strict=True))
    print(f"speed-up of {args.jobs} workers over one worker: {scaling:.2f}x")
    if "--jobs 1" in walls:
        user = statistics.median(o / p for o, p in zip(walls["--jobs 1"], walls[parallel], strict=True))
        print(f"speed-up of --jobs {args.jobs} over --jobs 1 ({torch.get_num_threads()} torch threads): {user:.2f}x")
    if args.min_speedup is not None and scaling < args.min_speedup:
        print(f"below the required {args.min_speedup:.2f}x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
