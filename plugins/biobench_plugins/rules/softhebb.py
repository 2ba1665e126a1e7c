"""SoftHebb: Hebbian plasticity in a soft winner-take-all layer, with a supervised read-out (Moraitis et al. 2022)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from biobench import CompetitiveHebbianRule, Hyperparameter, LearningRule, hookimpl

SOURCE_CODE = "SoftHebb code (NeuromorphicComputing/SoftHebb, presets.json '2SoftMlpMNIST', hebblinear.py)"
PRESET = "layer preset 'soft-c2000-t12-lr0.045-r35-v1'"


def soft_winner_take_all(pre: Tensor, weight: Tensor, inverse_temperature: float, anti_hebbian: bool) -> tuple[Tensor, Tensor]:
    """``(u, y)``: drives ``u = x W^T`` and the soft winner-take-all ``y = softmax(t u)`` over the units.

    With ``anti_hebbian`` (Journé et al. 2023) every unit but each example's
    strongest one gets ``-y``.
    """
    u = pre @ weight.t()
    y = torch.softmax(inverse_temperature * u, dim=1)
    if anti_hebbian:
        winners = u.argmax(dim=1)
        rows = torch.arange(u.shape[0])
        y = -y
        y[rows, winners] = -y[rows, winners]
    return u, y


def softhebb_change(pre: Tensor, weight: Tensor, inverse_temperature: float, anti_hebbian: bool) -> Tensor:
    """``dW / max|dW|`` with ``dW_ki = sum_b y_k (x_i - u_k W_ki)``, the SoftHebb plasticity of a batch."""
    u, y = soft_winner_take_all(pre, weight, inverse_temperature, anti_hebbian)
    change = y.t() @ pre - (y * u).sum(0)[:, None] * weight
    return change / (change.abs().max() + 1e-30)


def norm_dependent_rate(weight: Tensor, power: float) -> Tensor:
    """Per-unit factor ``(| ||w_k||_2 - 1 | + 1e-10)^power``: learning slows as a row reaches the unit sphere."""
    return (torch.linalg.vector_norm(weight, dim=1) - 1.0).abs().add(1e-10).pow(power)


class SoftHebb(CompetitiveHebbianRule):
    """SoftHebb (Moraitis et al. 2022): soft winner-take-all Hebbian hidden layer, delta-rule read-out.

    Citations: T. Moraitis, D. Toichkin, A. Journé, Y. Chua, Q. Guo, "SoftHebb:
    Bayesian inference in unsupervised Hebbian soft winner-take-all networks",
    Neuromorphic Computing and Engineering 2:044017 (2022), doi:10.1088/2634-4386/aca710;
    A. Journé, H. Garcia Rodriguez, Q. Guo, T. Moraitis, "Hebbian deep learning
    without feedback", ICLR 2023 (the anti-Hebbian variant). Equations and
    hyper-parameters from the authors' code (``NeuromorphicComputing/SoftHebb``,
    ``hebblinear.py: HebbSoftLinear``, preset ``2SoftMlpMNIST``).

    **Hidden layer (unsupervised, local).** For an input ``x`` the units' drives are
    ``u = W x`` (no bias) and their soft winner-take-all activity is
    ``y = softmax(t u)`` over the layer (inverse temperature ``t = 12``). Summed over
    the batch and normalised by its largest entry,

        dW_ki = sum_b y_k (x_i - u_k W_ki),    dW <- dW / max|dW|
        W_k <- W_k + eta_0 (| ||W_k||_2 - 1 | + 1e-10)^q dW_k

    The decay term drives each row to the unit sphere, and the weight-norm-dependent
    rate (``q = power_lr = 0.2``) slows a unit's learning to zero as it gets there.
    With ``anti_hebbian`` (ICLR 2023) every unit but the strongest one learns with
    ``-y``. The weights start uniform in ``[0, r]`` with
    ``r = sqrt(3 R^2 / inputs)`` (expected row norm ``R = 35``). The plasticity is
    written into ``.grad`` as ``-(norm factor) dW`` and applied by an exact step of
    size ``eta_0`` (:class:`biobench.PlasticityOptimizer`).

    **Read-out (supervised, local).** The architecture's hidden activity (``mlp-softmax``:
    ``softmax(5 u)``, the preset's activation before the classifier) feeds a
    linear layer trained by the delta rule on the task loss (softmax
    cross-entropy), Adam with step size 1e-3, as the preset's ``BP-c10`` classifier
    (only the read-out's own gradient: no error reaches the hidden layer).

    Departures from the authors' protocol: both stages train at once from the first
    batch (the preset trains the hidden layer for one epoch, then the classifier
    for ten; the authors' README says simultaneous training "generally does not
    hurt performance"), so the hidden layer keeps learning during every epoch;
    batch size 100 (the preset uses 32 for both stages); the classifier's step
    schedule (halving at 20, 35, 50, 60, 70, 80 and 90% of its epochs) is not
    reproduced. The bias and prior learning of the 2022 paper are off, as in the
    MLP preset. No ``PaperSetup``: the one-hidden-layer MNIST accuracy could not be
    read (the ICLR paper's 99.4% is a five-layer convolutional network).
    """

    name = "softhebb"
    description = (
        "SoftHebb (Moraitis et al. 2022): unsupervised soft winner-take-all Hebbian hidden layer "
        "+ delta-rule read-out"
    )
    citation = (
        "Moraitis, Toichkin, Journé, Chua & Guo (2022), SoftHebb: Bayesian inference in unsupervised "
        "Hebbian soft winner-take-all networks, Neuromorph. Comput. Eng. 2:044017; Journé, Garcia "
        "Rodriguez, Guo & Moraitis (2023), Hebbian deep learning without feedback, ICLR 2023"
    )
    family = "hebbian"
    optimizer = {
        "name": Hyperparameter("adam", SOURCE_CODE + ": the 'BP-c10' classifier is trained by Adam"),
        "lr": Hyperparameter(1e-3, SOURCE_CODE + ": 'lr_sup': 0.001"),
    }
    defaults = {
        "plasticity_lr": Hyperparameter(
            0.045, SOURCE_CODE + ", " + PRESET + ": lr 0.045", minimum=0.0, exclusive_minimum=True,
        ),
        "inverse_temperature": Hyperparameter(
            12.0, SOURCE_CODE + ", " + PRESET + ": t_invert 12", minimum=0.0, exclusive_minimum=True,
        ),
        "radius": Hyperparameter(
            35.0, SOURCE_CODE + ", " + PRESET + ": initial radius 35", minimum=0.0, exclusive_minimum=True,
        ),
        "adaptive_lr": Hyperparameter(True, SOURCE_CODE + ", " + PRESET + ": v1, the weight-norm-dependent rate"),
        "power_lr": Hyperparameter(0.2, SOURCE_CODE + ": MLP default 'power_lr': 0.2", minimum=0.0),
        "anti_hebbian": Hyperparameter(
            False, "the 2022 rule (HebbSoftLinear); true: the soft anti-Hebbian rule of Journé et al. 2023"
        ),
    }

    def initial_hidden_weight(self, shape: tuple[int, int], generator: torch.Generator) -> Tensor:
        """Uniform in ``[0, sqrt(3 R^2 / inputs)]`` (the code's positive init; mean squared row norm ``R^2``)."""
        bound = (3.0 * float(self.config["radius"]) ** 2 / shape[1]) ** 0.5
        return bound * torch.rand(shape, generator=generator)

    def hidden_change(self, pre: Tensor, weight: Tensor) -> Tensor:
        """``(norm factor) dW / max|dW|`` of the batch (see :func:`softhebb_change`)."""
        change = softhebb_change(
            pre, weight, float(self.config["inverse_temperature"]), bool(self.config["anti_hebbian"])
        )
        if self.config["adaptive_lr"]:
            change = change * norm_dependent_rate(weight, float(self.config["power_lr"]))[:, None]
        return change


@hookimpl
def biobench_pairing_unsupported(architecture: Any, rule: type[Any], task: Any) -> str | None:
    """SoftHebb needs one hidden layer of static units."""
    if not (isinstance(rule, type) and issubclass(rule, SoftHebb)):
        return None
    return rule.unsupported_reason(architecture)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register SoftHebb."""
    return [SoftHebb]
