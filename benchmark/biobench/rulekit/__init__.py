"""Building blocks that learning-rule plugins share (all exported from :mod:`biobench`).

Rules never import each other: what several rules need lives here.
"""

from biobench.rulekit.feedback import FeedbackPathwayRule, uniform_feedback
from biobench.rulekit.hebbian import clamped_signals
from biobench.rulekit.perturbation import (
    WERFEL_2005,
    NodePerturbationRule,
    derived_generator,
    per_example_losses,
)
from biobench.rulekit.targets import DifferenceTargetPropagationRule
from biobench.rulekit.traces import decay_per_step, exponential_trace

__all__ = [
    "WERFEL_2005",
    "DifferenceTargetPropagationRule",
    "FeedbackPathwayRule",
    "NodePerturbationRule",
    "clamped_signals",
    "decay_per_step",
    "derived_generator",
    "exponential_trace",
    "per_example_losses",
    "uniform_feedback",
]
