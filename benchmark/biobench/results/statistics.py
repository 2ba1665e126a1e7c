"""Statistics over seeds: bootstrap confidence intervals and the paired comparison with backprop.

**Interval.** The 95% percentile bootstrap interval of the mean over a pairing's
seeds (``scipy.stats.bootstrap``, 10,000 resamples, a fixed random generator so that
the rendered leaderboard is deterministic). With few seeds the interval is crude and
tends to be too narrow; it is reported together with the number of seeds.

**Comparison with backprop.** For each rule, its test accuracies and backprop's on
the same architecture, task, profile and track are paired by seed (the same seed
gives both the same initial weights and data order) and compared by a two-sided
paired t-test (``scipy.stats.ttest_rel``); the difference counts as significant at
p < 0.05. A paired Wilcoxon signed-rank test cannot reach p < 0.05 with five pairs,
so the t-test is the one used; its normality assumption is the price.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
ALPHA = 0.05


def bootstrap_interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval of the mean of ``values`` (None for fewer than two)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=np.float64)
    if np.ptp(data) == 0:
        return float(data[0]), float(data[0])
    from scipy.stats import bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap(
            (data,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile",
            random_state=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return low, high


def paired_test(rule: dict[int, float], reference: dict[int, float]) -> tuple[float, int] | None:
    """Two-sided paired t-test of ``rule`` against ``reference`` over their common seeds: (p-value, pairs).

    None for fewer than two common seeds. Identical differences (no variance) give
    p = 1 when they are all zero and p = 0 otherwise.
    """
    seeds = sorted(set(rule) & set(reference))
    if len(seeds) < 2:
        return None
    a = np.asarray([rule[s] for s in seeds], dtype=np.float64)
    b = np.asarray([reference[s] for s in seeds], dtype=np.float64)
    differences = a - b
    if np.ptp(differences) == 0:
        return (1.0 if differences[0] == 0 else 0.0), len(seeds)
    from scipy.stats import ttest_rel

    p = float(ttest_rel(a, b).pvalue)
    return (p if math.isfinite(p) else 1.0), len(seeds)


def verdict(difference: float | None, test: tuple[float, int] | None) -> str:
    """``better``, ``worse`` or ``no difference`` than backprop at :data:`ALPHA` (empty when untested)."""
    if difference is None or test is None:
        return ""
    p, _ = test
    if p >= ALPHA:
        return "no difference"
    return "better" if difference > 0 else "worse"
