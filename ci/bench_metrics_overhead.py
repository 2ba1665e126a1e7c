"""Cost of the harness metrics: one pairing trained with and without measurements, in one process.

Both runs train the same pairing with the same seed and profile (default:
MNIST, mlp, backprop, ``ci``), one with the harness's gradient, alignment
and robustness measurements (or, with ``--all-measurements``, every measurement of
``biobench.metrics.catalog``, representations included) and one with ``RunContext(measurement_factories=[])``.
Runs alternate, in ABBA order (without, with, with, without, ...), so that a
drift in machine load affects both sides alike; the medians are compared. Three
figures are printed:

* ``ratio``: median fit wall time with measurements / without (the budget is 1.15);
* ``CPU ratio``: the same with the process's CPU time, less sensitive to other
  programs competing for the cores;
* ``in-run share``: the time the metrics report for themselves
  (``harness_metrics_time_s``) over the rest of the same run's fit time, a figure
  that load changes between runs do not disturb.

Usage: python ci/bench_metrics_overhead.py [--data-dir DIR] [--arch mlp] [--rule backprop]
       [--profile ci] [--repeats N] [--all-measurements] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET = 1.15


def run_once(registry: Any, args: argparse.Namespace, factories: list[Any], out: Path) -> dict[str, Any]:
    """Train the pairing once with ``factories``; returns the record's metrics plus ``cpu_time_s``."""
    from biobench.training import runner

    ctx = runner.RunContext(
        registry=registry, out_dir=out, data_dir=args.data_dir, force=True, measurement_factories=factories
    )
    (spec,) = runner.plan_grid(registry, [args.task], [args.arch], [args.rule], [args.seed], args.profile)
    started = time.process_time()
    record = runner.execute(spec, ctx)
    cpu = time.process_time() - started
    if record["status"] != "ok":
        raise SystemExit(f"run failed ({record['status']}): {record['reason']}")
    return {**record["metrics"], "cpu_time_s": cpu}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the ratio; with ``--check`` exit 1 above the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--rule", default="backprop")
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--all-measurements", action="store_true",
                        help="every measurement of biobench.metrics.catalog, not only the harness metrics")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when the ratio exceeds {BUDGET}")
    args = parser.parse_args(argv)

    from biobench.metrics import catalog
    from biobench.metrics.harness import harness_measurement
    from biobench.plugin_api.registry import load_registry

    registry = load_registry()
    factories = catalog.measurement_factories() if args.all_measurements else [harness_measurement]
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    shares = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            order = ("without", "with") if i % 2 == 0 else ("with", "without")
            for side in order:
                m = run_once(registry, args, factories if side == "with" else [], Path(tmp) / f"{side}{i}")
                runs[side].append(m)
            measured, plain = runs["with"][-1], runs["without"][-1]
            own = measured.get("harness_metrics_time_s")
            if own is not None:
                shares.append(own / (measured["wall_time_s"] - own))
            print(
                f"repeat {i + 1} ({' then '.join(order)}): without {plain['wall_time_s']:.2f} s "
                f"(cpu {plain['cpu_time_s']:.2f} s), with {measured['wall_time_s']:.2f} s "
                f"(cpu {measured['cpu_time_s']:.2f} s)"
                + (f", metrics {own:.2f} s" if own is not None else ""),
                flush=True,
            )

    def median(side: str, key: str) -> float:
        return statistics.median(m[key] for m in runs[side])

    ratio = median("with", "wall_time_s") / median("without", "wall_time_s")
    cpu_ratio = median("with", "cpu_time_s") / median("without", "cpu_time_s")
    print(f"pairing: {args.task}/{args.arch}/{args.rule}, profile {args.profile}, seed {args.seed}, "
          f"{args.repeats} repeat(s); measurements: {'all harness modules' if args.all_measurements else 'biobench.metrics'}")
    print(f"median fit wall time: without {median('without', 'wall_time_s'):.2f} s, "
          f"with {median('with', 'wall_time_s'):.2f} s")
    print(f"ratio (with / without): {ratio:.3f}  (budget {BUDGET})")
    print(f"CPU ratio (with / without): {cpu_ratio:.3f}")
    if shares:
        print(f"in-run share (metrics time / rest of the fit): {statistics.median(shares):.3f}")
    if args.check and ratio > BUDGET:
        print(f"over budget: {ratio:.3f} > {BUDGET}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
