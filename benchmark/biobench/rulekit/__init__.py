"""Building blocks that learning-rule plugins share (all exported from :mod:`biobench`).

Rules never import each other: what several rules need lives here.
"""

from biobench.rulekit.associative import balanced_signs, gupta_stdp_change
from biobench.rulekit.competitive import CompetitiveHebbianRule
from biobench.rulekit.feedback import (
    FEEDBACK_INITS,
    FeedbackPathwayRule,
    draw_feedback,
    feedback_init_options,
    uniform_feedback,
)
from biobench.rulekit.hashing import content_key, hash32, keyed_uniform
from biobench.rulekit.hebbian import clamped_signals
from biobench.rulekit.initialization import (
    BIAS_INITS,
    INIT_SCHEMES,
    init_bound_or_std,
    init_matrix,
    initialize_linear,
    weight_init_options,
)
from biobench.rulekit.perturbation import (
    WERFEL_2005,
    NodePerturbationRule,
    derived_generator,
    per_example_losses,
)
from biobench.rulekit.plasticity import PlasticityOptimizer
from biobench.rulekit.targets import DifferenceTargetPropagationRule
from biobench.rulekit.traces import decay_per_step, exponential_trace

__all__ = [
    "BIAS_INITS",
    "FEEDBACK_INITS",
    "INIT_SCHEMES",
    "WERFEL_2005",
    "CompetitiveHebbianRule",
    "balanced_signs",
    "gupta_stdp_change",
    "DifferenceTargetPropagationRule",
    "FeedbackPathwayRule",
    "NodePerturbationRule",
    "PlasticityOptimizer",
    "clamped_signals",
    "content_key",
    "hash32",
    "keyed_uniform",
    "decay_per_step",
    "derived_generator",
    "draw_feedback",
    "exponential_trace",
    "feedback_init_options",
    "init_bound_or_std",
    "init_matrix",
    "initialize_linear",
    "per_example_losses",
    "uniform_feedback",
    "weight_init_options",
]
