"""biobench: a benchmark suite for biologically plausible learning rules.

Everything a plugin needs is importable from here (plugins import only ``biobench``):
the plugin interfaces and hook marker (:mod:`biobench.plugin_api`), the building
blocks rules share (:mod:`biobench.rulekit`) and the data-file helpers tasks use
(:mod:`biobench.data`). The harness itself lives in :mod:`biobench.training`,
:mod:`biobench.execution`, :mod:`biobench.metrics` and :mod:`biobench.results`.
"""

from biobench.data import (
    VALIDATION_SIZE,
    DataError,
    load_mnist_arrays,
    load_mnist_tensors,
    read_idx,
    to_tensors,
)
from biobench.plugin_api import (
    CORE_CAPABILITIES,
    LOSSES,
    OPTIMIZER_OPTIONS,
    RULE_FAMILIES,
    Architecture,
    Choice,
    FeedbackFn,
    Hyperparameter,
    IntRange,
    LayerSignals,
    LearningRule,
    LogUniform,
    LossFn,
    Network,
    OptimizerSettings,
    PlasticLayer,
    PlasticLinear,
    Task,
    TaskData,
    Uniform,
    accumulate_grad,
    build_optimizer,
    hookimpl,
    reroute_input_gradient,
)
from biobench.rulekit import (
    WERFEL_2005,
    FeedbackPathwayRule,
    NodePerturbationRule,
    clamped_signals,
    decay_per_step,
    derived_generator,
    exponential_trace,
    per_example_losses,
    uniform_feedback,
)

__version__ = "0.1.0"

__all__ = [
    "CORE_CAPABILITIES",
    "LOSSES",
    "OPTIMIZER_OPTIONS",
    "Choice",
    "IntRange",
    "LogUniform",
    "OptimizerSettings",
    "Uniform",
    "build_optimizer",
    "RULE_FAMILIES",
    "VALIDATION_SIZE",
    "WERFEL_2005",
    "Architecture",
    "DataError",
    "FeedbackFn",
    "FeedbackPathwayRule",
    "Hyperparameter",
    "LayerSignals",
    "LearningRule",
    "LossFn",
    "Network",
    "NodePerturbationRule",
    "PlasticLayer",
    "PlasticLinear",
    "Task",
    "TaskData",
    "accumulate_grad",
    "clamped_signals",
    "decay_per_step",
    "derived_generator",
    "exponential_trace",
    "hookimpl",
    "load_mnist_arrays",
    "load_mnist_tensors",
    "per_example_losses",
    "read_idx",
    "reroute_input_gradient",
    "to_tensors",
    "uniform_feedback",
]
