"""Unsupervised competing hidden units with a supervised read-out (Krotov & Hopfield 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from biobench import CompetitiveHebbianRule, Hyperparameter, LearningRule, hookimpl

SOURCE_CODE = "Krotov & Hopfield's code (DimaKrotov/Biological_Learning, Unsupervised_learning_algorithm_MNIST.ipynb)"
RECALLED = (
    "Krotov & Hopfield (2019)'s MNIST setting as re-implementations give it (the paper's text could "
    "not be read)"
)


def lebesgue_currents(pre: Tensor, weight: Tensor, p: float) -> Tensor:
    """``I_mu = sum_i sgn(W_mu,i) |W_mu,i|^(p-1) v_i`` for a (batch, in) input: (batch, units)."""
    return pre @ (weight.sign() * weight.abs().pow(p - 1.0)).t()


def ranking_activity(currents: Tensor, rank: int, delta: float) -> Tensor:
    """``g``: 1 for each example's strongest unit, ``-delta`` for its ``rank``-th strongest, 0 otherwise."""
    order = torch.topk(currents, rank, dim=1).indices
    rows = torch.arange(currents.shape[0], device=currents.device)
    g = torch.zeros_like(currents)
    g[rows, order[:, rank - 1]] = -delta
    g[rows, order[:, 0]] = 1.0
    return g


def competing_units_change(pre: Tensor, weight: Tensor, p: float, rank: int, delta: float) -> Tensor:
    """The batch's plasticity ``ds / max|ds|`` with ``ds_mu,i = sum_b g_mu (v_i - I_mu W_mu,i)``."""
    currents = lebesgue_currents(pre, weight, p)
    g = ranking_activity(currents, rank, delta)
    change = g.t() @ pre - (g * currents).sum(0)[:, None] * weight
    return change / change.abs().max().clamp_min(1e-30)


class KrotovHopfield(CompetitiveHebbianRule):
    """Competing hidden units learnt without labels, read out by a supervised layer (Krotov & Hopfield 2019).

    Citation: D. Krotov and J. J. Hopfield, "Unsupervised learning by competing
    hidden units", PNAS 116(16):7723-7731 (2019), doi:10.1073/pnas.1820458116;
    equations as in the authors' code (``DimaKrotov/Biological_Learning``, the
    "fast" implementation of the paper's eq. 3 with the ranking non-linearity).

    **Hidden layer (unsupervised, local).** For input ``v`` (the layer's
    pre-synaptic rates) the hidden units receive the currents
    ``I_mu = sum_i sgn(W_mu,i) |W_mu,i|^(p-1) v_i``. Global inhibition ranks them:
    the strongest unit gets ``g = 1``, the ``k``-th strongest ``g = -Delta``
    (anti-Hebbian), all others ``g = 0``. Summed over the batch,

        ds_mu,i = sum_b g_mu (v_i - I_mu W_mu,i),    W <- W + eps_t ds / max_mu,i |ds_mu,i|

    The decay term drives every row to the unit Lebesgue sphere ``sum_i |W_mu,i|^p = 1``.
    ``eps_t`` anneals linearly to 0 over the run (the run's ``linear`` schedule,
    ``eps_t = eps_0 (1 - epoch/epochs)``); the plasticity is written into ``.grad`` as
    ``-ds / max|ds|`` and applied by an exact step of size ``eps_t``
    (:class:`biobench.PlasticityOptimizer`). The weights start from ``N(0, 1)``
    (drawn at ``bind``, as in the authors' code: unit-norm starts make one unit win
    every input); the hidden layer's bias, where the architecture has one, is set
    to zero and never changes.

    **Read-out (supervised, local).** The architecture's hidden activity ``h``
    (``mlp-repu``: ``max(W v, 0)^n``; ``mlp``: ``relu(W v)``) feeds a linear layer
    trained by the delta rule on the task loss, i.e. the gradient of the loss with
    respect to the read-out weights only, ``dS = -(dL/dlogits) h^T`` (no error
    reaches the hidden layer), applied by the run's optimiser (Adam).

    Departures from the paper: both stages train at once from the first batch (the
    paper trains the hidden layer first, then the read-out); the read-out is the
    task's softmax cross-entropy (the paper uses ``tanh(beta S h)`` with the loss
    ``sum |c - t|^m``; the prediction, ``argmax S h``, is the same); the read-out's
    step size follows the same linear schedule; minibatch 100 and the
    hyper-parameters ``p = 3``, ``k = 7``, ``Delta = 0.4`` are the MNIST setting as
    re-implementations give it (the paper's text could not be read; the authors'
    demo notebook uses ``p = 2``, ``k = 2``, ``Delta = 0.4``, ``eps_0 = 0.02``, 200
    epochs, 100 units). No ``PaperSetup`` is declared: the paper's MNIST error
    could not be read in its text.
    """

    name = "krotov_hopfield"
    description = (
        "Krotov & Hopfield 2019: unsupervised competing hidden units (ranking, Lebesgue-norm "
        "Hebbian rule) + delta-rule read-out"
    )
    citation = (
        "Krotov & Hopfield (2019), Unsupervised learning by competing hidden units, PNAS 116(16): "
        "7723-7731, doi:10.1073/pnas.1820458116"
    )
    family = "hebbian"
    optimizer = {
        "name": Hyperparameter("adam", "the read-out is trained by Adam in the re-implementations (" + RECALLED + ")"),
        "lr": Hyperparameter(1e-3, "Adam's default step size for the read-out"),
        "schedule": Hyperparameter(
            "linear", SOURCE_CODE + ": eps = eps0 * (1 - epoch / Nep), linear annealing to 0 (the read-out's "
            "step size follows it here)"
        ),
    }
    defaults = {
        "plasticity_lr": Hyperparameter(
            0.02, SOURCE_CODE + ": eps0 = 2e-2", minimum=0.0, exclusive_minimum=True,
        ),
        "lebesgue_p": Hyperparameter(3.0, "p = 3, " + RECALLED, minimum=2.0),
        "rank": Hyperparameter(7, "k = 7, " + RECALLED, minimum=2),
        "delta": Hyperparameter(0.4, SOURCE_CODE + ": Delta = 0.4 (the same in the paper's MNIST setting)", minimum=0.0),
        "init_std": Hyperparameter(
            1.0, SOURCE_CODE + ": initial weights from a normal distribution, mu = 0, sigma = 1",
            minimum=0.0, exclusive_minimum=True,
        ),
    }

    def initial_hidden_weight(self, shape: tuple[int, int], generator: torch.Generator) -> Tensor:
        """``N(0, init_std^2)`` weights, as in the authors' code."""
        return float(self.config["init_std"]) * torch.randn(shape, generator=generator)

    def hidden_change(self, pre: Tensor, weight: Tensor) -> Tensor:
        """``ds / max|ds|`` of the batch (see :func:`competing_units_change`)."""
        rank = int(self.config["rank"])
        if rank > weight.shape[0]:
            raise ValueError(f"rule {self.name!r}: rank {rank} exceeds the {weight.shape[0]} hidden units")
        return competing_units_change(
            pre, weight, float(self.config["lebesgue_p"]), rank, float(self.config["delta"])
        )


@hookimpl
def biobench_pairing_unsupported(architecture: Any, rule: type[Any], task: Any) -> str | None:
    """Krotov & Hopfield's rule needs one hidden layer of static units."""
    if not (isinstance(rule, type) and issubclass(rule, KrotovHopfield)):
        return None
    return rule.unsupported_reason(architecture)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register Krotov & Hopfield's competing hidden units."""
    return [KrotovHopfield]
