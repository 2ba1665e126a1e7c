"""Base of the competitive Hebbian rules: a hidden layer learnt by local plasticity, a read-out by the delta rule.

Krotov & Hopfield (2019) and SoftHebb (Moraitis et al. 2022) learn one hidden
layer without labels and train a linear read-out on its activity with labels.
:class:`CompetitiveHebbianRule` holds what they share: the check that the network
has one hidden layer of static units, the paper's initial hidden weights drawn at
``bind``, the read-out's delta rule (the task loss's gradient with respect to the
read-out's own parameters, no error sent to the hidden layer) and an optimiser that
applies the hidden plasticity as an exact step (:class:`PlasticityOptimizer`) and the
run's optimiser to the read-out. A subclass says how the hidden weights start and
change.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor, nn

from biobench.plugin_api.interfaces import LearningRule, LossFn, Network, accumulate_grad
from biobench.plugin_api.optimization import OptimizerSettings, build_optimizer
from biobench.rulekit.plasticity import PlasticityOptimizer


class CompetitiveHebbianRule(LearningRule):
    """One hidden layer trained by ``W <- W + lr * hidden_change(...)``, a read-out by the delta rule.

    ``.grad`` of the hidden weights is ``-hidden_change`` (descent convention) and the
    optimiser steps them by exactly ``lr = config["plasticity_lr"]`` times that (times
    the run's schedule factor); the read-out's ``.grad`` is ``dL/dtheta`` of its own
    parameters, stepped by the run's optimiser. The hidden layer's bias, where the
    architecture has one, is set to zero at ``bind`` and never changes.
    """

    requires = frozenset({"signals", "dense", "differentiable"})
    weight_transport = False
    global_error = False

    @abc.abstractmethod
    def initial_hidden_weight(self, shape: tuple[int, int], generator: torch.Generator) -> Tensor:
        """The paper's initial hidden weights, shape (units, inputs), drawn from ``generator``."""

    @abc.abstractmethod
    def hidden_change(self, pre: Tensor, weight: Tensor) -> Tensor:
        """The plasticity direction ``dW`` of the hidden weights for a batch of inputs ``pre``."""

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Check there is one hidden layer, then draw its initial weights and zero its bias."""
        super().bind(network, generator)
        if len(network.layers) != 2:
            raise ValueError(
                f"rule {self.name!r} trains one hidden layer and a read-out; this network has "
                f"{len(network.layers)} plastic layers"
            )
        hidden = network.layers[0]
        with torch.no_grad():
            hidden.weight.copy_(self.initial_hidden_weight(tuple(hidden.weight.shape), generator))
            if hidden.bias is not None:
                hidden.bias.zero_()

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Hidden weights: ``.grad = -hidden_change``; read-out: the task loss's gradient of its own parameters."""
        hidden, readout = self.network.layers
        with torch.enable_grad():
            logits, signals = self.network.forward_with_signals(x)
            loss = loss_fn(logits, y)
            readout_params = [p for p in readout.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, readout_params)
        for param, grad in zip(readout_params, grads, strict=True):
            accumulate_grad(param, grad)
        if signals[0] is None or signals[0].time_major:
            raise ValueError(f"rule {self.name!r} needs the hidden layer's static pre-synaptic activity")
        with torch.no_grad():
            accumulate_grad(hidden.weight, -self.hidden_change(signals[0].pre, hidden.weight.detach()))
        return loss.detach(), logits.detach()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The hidden weights and the read-out's parameters (not the hidden bias)."""
        hidden, readout = self.network.layers
        return [hidden.weight, *readout.parameters()]

    def configure_optimizer(
        self, params: list[nn.Parameter], settings: OptimizerSettings | None = None
    ) -> torch.optim.Optimizer:
        """Exact plasticity steps of size ``plasticity_lr`` on the hidden weights, the run's optimiser on the rest."""
        hidden = self.network.layers[0].weight
        others = [p for p in params if p is not hidden]
        inner = build_optimizer(others, settings or OptimizerSettings.resolve(self.optimizer))
        return PlasticityOptimizer([hidden], float(self.config["plasticity_lr"]), inner)

    @classmethod
    def unsupported_reason(cls, architecture: Any) -> str | None:
        """Why this rule cannot train ``architecture`` (spiking, or not one hidden layer), or None."""
        if "time" in architecture.capabilities:
            return (
                f"rule {cls.name!r} learns from static activities; architecture {architecture.name!r} is "
                "a spiking network (capability 'time')"
            )
        hidden = getattr(architecture, "config", {}).get("hidden")
        if isinstance(hidden, list) and len(hidden) != 1:
            return (
                f"rule {cls.name!r} trains one hidden layer and a read-out; architecture "
                f"{architecture.name!r} has {len(hidden)} hidden layers ({hidden}): use one, e.g. "
                "'mlp' with hidden=[N], 'mlp-repu' or 'mlp-softmax'"
            )
        return None
