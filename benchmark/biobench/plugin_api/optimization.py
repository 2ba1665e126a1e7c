"""The optimiser and learning-rate schedule of a run.

A rule writes its update into ``.grad``; an optimiser applies it. The optimiser
belongs to the run: its settings (:data:`OPTIMIZER_OPTIONS`) come from the rule's
declared defaults (``LearningRule.optimizer``, each with its source), overridden by
the command line (``--optimizer``, ``--lr``, ``--momentum``, ``--weight-decay``,
``--lr-schedule``...), and are stored in every record's ``config.run.optimizer``.

Schedules change the step size once per epoch: ``step`` multiplies it by ``gamma``
every ``step_epochs`` epochs, ``exponential`` by ``gamma`` every epoch, ``cosine``
anneals it to 0 over the run's epochs (``torch.optim.lr_scheduler.CosineAnnealingLR``),
``linear`` multiplies it by ``1 - e / E`` during epoch ``e`` (0-based) of ``E`` (the
annealing of Krotov & Hopfield 2019's code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from biobench.plugin_api.hyperparameters import Hyperparameter, LogUniform, check_options

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "exponential", "cosine", "linear")

#: Every optimiser setting, with the harness's default and its source.
OPTIMIZER_OPTIONS: dict[str, Hyperparameter] = {
    "name": Hyperparameter("adam", "Adam (Kingma & Ba 2015), the harness's default optimiser", choices=OPTIMIZERS),
    "lr": Hyperparameter(
        1e-3, "Adam's default step size (Kingma & Ba 2015)", minimum=0.0, exclusive_minimum=True,
        search=LogUniform(1e-4, 1e-2),
    ),
    "momentum": Hyperparameter(0.0, "none (plain SGD); used by sgd only", minimum=0.0, maximum=1.0),
    "nesterov": Hyperparameter(False, "classical momentum; used by sgd only"),
    "weight_decay": Hyperparameter(
        0.0, "none; L2 for adam and sgd, decoupled for adamw (Loshchilov & Hutter 2019)", minimum=0.0
    ),
    "beta1": Hyperparameter(0.9, "Adam's default (Kingma & Ba 2015)", minimum=0.0, maximum=1.0),
    "beta2": Hyperparameter(0.999, "Adam's default (Kingma & Ba 2015)", minimum=0.0, maximum=1.0),
    "schedule": Hyperparameter("constant", "a fixed step size", choices=SCHEDULES),
    "step_epochs": Hyperparameter(1, "step schedule: epochs between two decays", minimum=1),
    "gamma": Hyperparameter(
        0.1, "step and exponential schedules: factor per decay", minimum=0.0, exclusive_minimum=True, maximum=1.0
    ),
}


@dataclass(frozen=True)
class OptimizerSettings:
    """The resolved optimiser settings of one run (see :data:`OPTIMIZER_OPTIONS`)."""

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    schedule: str = "constant"
    step_epochs: int = 1
    gamma: float = 0.1

    @classmethod
    def resolve(cls, rule_defaults: dict[str, Hyperparameter], overrides: dict[str, Any] | None = None) -> OptimizerSettings:
        """The harness's defaults, then the rule's declared ones, then ``overrides`` (all checked)."""
        declared = {**OPTIMIZER_OPTIONS, **rule_defaults}
        return cls(**check_options(declared, dict(overrides or {}), "the optimiser"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (stored in the record's ``config.run.optimizer``)."""
        return asdict(self)


def build_optimizer(params: list[Any], settings: OptimizerSettings) -> torch.optim.Optimizer:
    """The torch optimiser of ``settings`` over ``params`` (tensors, or parameter-group dicts)."""
    s = settings
    if s.name == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay)
    if s.name == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)
    if s.name == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)
    raise ValueError(f"unknown optimiser {s.name!r}; known: {', '.join(OPTIMIZERS)}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: OptimizerSettings, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-epoch learning-rate schedule of ``settings`` (None for a constant step size)."""
    s = settings
    if s.schedule == "constant":
        return None
    if s.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_epochs, gamma=s.gamma)
    if s.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=s.gamma)
    if s.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if s.schedule == "linear":
        total = max(1, epochs)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: max(0.0, 1.0 - epoch / total))
    raise ValueError(f"unknown schedule {s.schedule!r}; known: {', '.join(SCHEDULES)}")
