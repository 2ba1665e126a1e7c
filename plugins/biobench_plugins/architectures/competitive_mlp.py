"""One-hidden-layer networks of the competitive Hebbian papers: 784 -> N -> 10, hidden layer without bias.

Krotov & Hopfield (2019) and SoftHebb (Moraitis et al. 2022; Journé et al. 2023)
learn a hidden layer without labels and read it out with a supervised linear layer.
The hidden units' activity that the read-out sees differs between the papers, so
each network is its own architecture:

* ``mlp-repu``: rectified power units, ``h = max(u, 0)^n`` with ``u = W x`` (Krotov &
  Hopfield's ``f(x) = max(x, 0)^n``, ``n = 4.5``);
* ``mlp-softmax``: a soft winner-take-all over the hidden layer, ``h = softmax(beta u)``
  (the SoftHebb MLP's ``softmax_5`` activation, ``beta = 5``).

Both have no hidden bias (neither paper's hidden layer has one), a linear read-out
``logits = S h + b`` and PyTorch's default initialisation (the Hebbian rules draw
their papers' initial hidden weights themselves when they bind). Every rule of the
benchmark that needs a dense differentiable network runs on them, so backprop on the
same network is the reference. ``mlp-softmax`` does not declare ``rate``: its
activation couples the units, so it is not an elementwise function of the drive.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from biobench import Architecture, Hyperparameter, Network, PlasticLinear, hookimpl


def rectified_power(u: Tensor, power: float) -> Tensor:
    """``max(u, 0) ** power`` elementwise (Krotov & Hopfield 2019's ``f``)."""
    return torch.relu(u).pow(power)


def layer_softmax(u: Tensor, inverse_temperature: float) -> Tensor:
    """``softmax(beta u)`` over the units of a (batch, units) drive (a soft winner-take-all)."""
    return torch.softmax(inverse_temperature * u, dim=-1)


class _CompetitiveMLP(Architecture):
    """784 -> hidden -> classes; hidden drive ``u = W x`` without bias, read-out ``S h + b``."""

    capabilities = frozenset({"differentiable", "feedback", "node_noise", "signals", "dense"})
    profile_overrides = {"smoke": {"hidden": 100}, "ci": {"hidden": 400}}

    def hidden_activation(self):
        """The hidden units' activation ``h = f(u)``."""
        raise NotImplementedError

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the two layers with PyTorch's default initialisation drawn from ``generator``."""
        hidden = int(self.config["hidden"])
        if hidden < 1:
            raise ValueError(f"hidden width must be positive, got {hidden}")
        layers = [
            PlasticLinear("fc1", input_size, hidden, activation=self.hidden_activation(), bias=False, generator=generator),
            PlasticLinear("fc2", hidden, num_classes, activation=None, generator=generator),
        ]
        return Network(module=nn.Sequential(*layers), layers=layers, architecture=self)


class RectifiedPowerMLP(_CompetitiveMLP):
    """Krotov & Hopfield (2019)'s classifier network: hidden ``h = max(W x, 0)^n``, linear read-out."""

    name = "mlp-repu"
    description = "One hidden layer of rectified power units max(Wx, 0)^n, no hidden bias (Krotov & Hopfield 2019)"
    capabilities = _CompetitiveMLP.capabilities | {"rate"}
    defaults = {
        "hidden": Hyperparameter(2000, "Krotov & Hopfield (2019): 2000 hidden units on MNIST", minimum=1),
        "power": Hyperparameter(
            4.5,
            "n = 4.5, Krotov & Hopfield (2019)'s MNIST read-out exponent as re-implementations and the "
            "SoftHebb code's defaults ('power': 4.5) give it (the paper's text could not be read)",
            minimum=1.0,
        ),
    }

    def hidden_activation(self):
        """``max(u, 0) ** power``."""
        return partial(rectified_power, power=float(self.config["power"]))


class SoftmaxMLP(_CompetitiveMLP):
    """The SoftHebb MLP: hidden ``h = softmax(beta W x)`` over the hidden units, linear read-out."""

    name = "mlp-softmax"
    description = "One hidden layer read out through softmax(beta Wx) over its units, no hidden bias (SoftHebb)"
    defaults = {
        "hidden": Hyperparameter(2000, "SoftHebb code, preset 2SoftMlpMNIST: 2000 hidden units", minimum=1),
        "inverse_temperature": Hyperparameter(
            5.0, "SoftHebb code, preset 2SoftMlpMNIST: activation 'softmax_5' before the classifier",
            minimum=0.0, exclusive_minimum=True,
        ),
    }

    def hidden_activation(self):
        """``softmax(beta u)`` over the hidden units."""
        return partial(layer_softmax, inverse_temperature=float(self.config["inverse_temperature"]))


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the two one-hidden-layer networks of the competitive Hebbian papers."""
    return [RectifiedPowerMLP, SoftmaxMLP]
