"""The plugin contract: interfaces, plastic layers, capabilities, hook specifications and discovery."""

from biobench.plugin_api.capabilities import CORE_CAPABILITIES, Capabilities, Capability
from biobench.plugin_api.hookspecs import hookimpl
from biobench.plugin_api.interfaces import (
    RULE_FAMILIES,
    Architecture,
    Hyperparameter,
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

__all__ = [
    "CORE_CAPABILITIES",
    "RULE_FAMILIES",
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
    "reroute_input_gradient",
]
