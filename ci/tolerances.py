"""Suggest the ``--compare`` tolerances of the leaderboard's columns from the spread over seeds.

A fresh record is compared with the committed one of the same run (same seed and
configuration). On the same machine and torch thread count a run is reproduced to
the last bit; on another machine the arithmetic differs in its last digits and a
run drifts, at most as far as one seed is from another. So each column's tolerance
is set from the spread over seeds of the committed records: for every pairing with
at least three ok seeds, the sample standard deviation of the column; the
tolerance is three times the median of those, rounded up to two significant digits (absolute columns), or
three times the median coefficient of variation (relative columns).

Usage: python ci/tolerances.py [--results leaderboard/results]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Print, per column with a tolerance, the declared value and the one the spread suggests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="leaderboard/results")
    args = parser.parse_args(argv)

    from biobench.results import leaderboard, records

    recs = records.read_records(Path(args.results), warn=lambda message: None)
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        if r["status"] == "ok":
            groups.setdefault(leaderboard.group_key(r), []).append(r)
    print(f"{len(recs)} records, {len(groups)} configurations")
    print(f"{'column':28} {'declared':>14} {'median sd':>12} {'suggested':>12}  pairings")
    for column in leaderboard.metric_columns():
        if column.tolerance is None and column.relative_tolerance is None:
            continue
        spreads = []
        for group in groups.values():
            values = [v for v in (column.read(r["metrics"]) for r in group) if v is not None]
            if len(values) < 3:
                continue
            sd = statistics.stdev(values)
            if column.relative_tolerance is not None:
                mean = statistics.fmean(values)
                if mean == 0:
                    continue
                sd = sd / abs(mean)
            spreads.append(sd)
        if not spreads:
            print(f"{column.key:28} {'—':>14} {'—':>12} {'—':>12}  0")
            continue
        median = statistics.median(spreads)
        suggested = 3 * median
        magnitude = 10 ** (math.floor(math.log10(suggested)) - 1) if suggested > 0 else 1  # two digits
        suggested = math.ceil(suggested / magnitude) * magnitude
        declared = column.tolerance if column.tolerance is not None else f"{column.relative_tolerance} rel"
        print(f"{column.key:28} {declared!s:>14} {median:12.4g} {suggested:12.4g}  {len(spreads)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
