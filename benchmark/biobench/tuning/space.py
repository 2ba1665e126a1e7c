"""The search space of a pairing: every option its rule, its architecture and the optimiser declare tunable.

An option is tunable when its :class:`~biobench.plugin_api.hyperparameters.Hyperparameter`
has a ``search`` space. The optimiser's step size is tunable for every rule
(:data:`~biobench.plugin_api.optimization.OPTIMIZER_OPTIONS`, log-uniform over two
decades around Adam's default), unless the rule declares its own ``lr`` with another
search space (or none). Parameters are named ``<kind>.<option>`` (``rule.feedback_scale``,
``optimizer.lr``, ``architecture.hidden``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from biobench.plugin_api.hyperparameters import (
    Choice,
    Hyperparameter,
    IntRange,
    LogUniform,
    Uniform,
)
from biobench.plugin_api.optimization import OPTIMIZER_OPTIONS

KINDS = ("architecture", "rule", "optimizer")


@dataclass(frozen=True)
class Dimension:
    """One tunable option: where it goes, its declaration and its search space."""

    kind: str
    option: str
    declaration: Hyperparameter

    @property
    def name(self) -> str:
        """``kind.option``, the parameter's name in the study."""
        return f"{self.kind}.{self.option}"


def dimensions(architecture_cls: type, rule_cls: type) -> list[Dimension]:
    """The pairing's tunable options, sorted by name."""
    found: list[Dimension] = []
    optimizer = {**OPTIMIZER_OPTIONS, **rule_cls.optimizer}
    for kind, declared in (("architecture", architecture_cls.defaults), ("rule", rule_cls.defaults), ("optimizer", optimizer)):
        for option, hyper in declared.items():
            if hyper.search is not None:
                found.append(Dimension(kind, option, hyper))
    return sorted(found, key=lambda d: d.name)


def distribution(dimension: Dimension) -> Any:
    """The Optuna distribution of a dimension."""
    import optuna

    space = dimension.declaration.search
    if isinstance(space, LogUniform):
        return optuna.distributions.FloatDistribution(space.low, space.high, log=True)
    if isinstance(space, Uniform):
        return optuna.distributions.FloatDistribution(space.low, space.high)
    if isinstance(space, IntRange):
        return optuna.distributions.IntDistribution(space.low, space.high)
    if isinstance(space, Choice):
        return optuna.distributions.CategoricalDistribution(list(space.options))
    raise ValueError(f"{dimension.name}: unknown search space {space!r}")


def describe(space: list[Dimension]) -> dict[str, Any]:
    """The search space as JSON (stored in every tuned record)."""
    return {d.name: {**d.declaration.search.describe(), "default": d.declaration.value} for d in space}


def options_of(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Study parameters ``{"kind.option": value}`` as options by kind."""
    out: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    for name, value in params.items():
        kind, _, option = name.partition(".")
        out[kind][option] = value
    return out
