"""Metrics that judge a learning rule, computed identically for every pairing.

Gradient bias (cosine to the reference gradient), update angle, gradient
signal-to-noise ratio (the rule's and backprop's), alignment angle of feedback
pathways, FGSM robustness, representational geometry, and what training itself
yields (accuracy, learning curves, cost). Each metric's single definition lives
in its class; :mod:`biobench.metrics.catalog` finds them all and renders the
README's metric table (``python -m biobench.metrics``).
"""

from biobench.metrics.base import (
    Column,
    MeasurementSettings,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    fgsm_key,
)
from biobench.metrics.measurement import Measurement, RunState

__all__ = [
    "Column",
    "Measurement",
    "MeasurementSettings",
    "Metric",
    "MetricDefinition",
    "MetricUndefined",
    "Outcome",
    "RunState",
    "fgsm_key",
]
