"""The plugin contract: interfaces, plastic layers, capabilities, hook specifications and discovery."""

from biobench.plugin_api.accelerators import on_accelerator
from biobench.plugin_api.capabilities import CORE_CAPABILITIES, Capabilities, Capability
from biobench.plugin_api.hookspecs import hookimpl
from biobench.plugin_api.hyperparameters import (
    Choice,
    Hyperparameter,
    IntRange,
    LogUniform,
    Uniform,
)
from biobench.plugin_api.interfaces import (
    LOSSES,
    RULE_FAMILIES,
    Architecture,
    LearningRule,
    LossFn,
    Network,
    PluginClass,
    Task,
    TaskData,
    accumulate_grad,
)
from biobench.plugin_api.layers import (
    FeedbackFn,
    LayerSignals,
    PlasticLayer,
    PlasticLinear,
    reroute_input_gradient,
)
from biobench.plugin_api.optimization import (
    OPTIMIZER_OPTIONS,
    OptimizerSettings,
    build_optimizer,
    build_scheduler,
)
from biobench.plugin_api.outputs import (
    STEP_REDUCTIONS,
    StepOutputs,
    step_outputs,
    with_step_outputs,
)
from biobench.plugin_api.reproductions import PaperSetup, PublishedValue

__all__ = [
    "CORE_CAPABILITIES",
    "LOSSES",
    "OPTIMIZER_OPTIONS",
    "RULE_FAMILIES",
    "STEP_REDUCTIONS",
    "StepOutputs",
    "step_outputs",
    "with_step_outputs",
    "Choice",
    "IntRange",
    "LogUniform",
    "OptimizerSettings",
    "PaperSetup",
    "PublishedValue",
    "Uniform",
    "build_optimizer",
    "build_scheduler",
    "Architecture",
    "Capabilities",
    "Capability",
    "FeedbackFn",
    "Hyperparameter",
    "LayerSignals",
    "LearningRule",
    "LossFn",
    "Network",
    "PlasticLayer",
    "PlasticLinear",
    "PluginClass",
    "Task",
    "TaskData",
    "accumulate_grad",
    "hookimpl",
    "on_accelerator",
    "reroute_input_gradient",
]
