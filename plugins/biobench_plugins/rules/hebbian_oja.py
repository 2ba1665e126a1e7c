"""Supervised Hebbian learning stabilised by Oja's subspace rule (output clamped to the target)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from biobench import (
    LearningRule,
    LossFn,
    accumulate_grad,
    clamped_signals,
    hookimpl,
)


class HebbianOja(LearningRule):
    """Hebbian learning with Oja's normalisation (Oja 1982; subspace rule, Oja 1989).

    As in the plain supervised Hebbian rule, the output layer's post-synaptic
    activity is clamped to the one-hot target; Oja's decay term keeps the weights
    bounded. With ``Y`` (B, out) the post-synaptic rates, ``X`` (B, in) the
    pre-synaptic rates and the bias treated as a synapse from an always-on unit:

        dW_l = eta (1/B) (Y^T X - (Y^T Y) W_l),   db_l = eta (1/B) (Y^T 1 - (Y^T Y) b_l)

    For one unit this is Oja's rule ``dw = eta y (x - y w)``; for a layer it is the
    subspace rule, whose ``Y^T Y`` term also decorrelates the units (applied to the
    rates of nonlinear units, as in the nonlinear PCA rule of Karhunen & Joutsensalo
    1994). For the clamped output layer ``Y^T Y`` is diagonal, and each class's
    weights converge to the mean pre-synaptic activity of that class (a class-mean
    read-out). Written into ``.grad`` as ``-dW / eta`` (descent convention).
    """

    name = "hebbian_oja"
    description = "Supervised Hebbian learning stabilised by Oja's subspace rule, output clamped to the target"
    citation = (
        "Oja (1982), A simplified neuron model as a principal component analyzer, J. Math. Biol. 15; "
        "Oja (1989), Neural networks, principal components, and subspaces, Int. J. Neural Syst. 1"
    )
    family = "hebbian"
    requires = frozenset({"signals", "dense", "rate"})
    weight_transport = False
    global_error = False

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write ``-(1/B)(Y^T X - Y^T Y W)`` (output clamped to the target) into ``.grad``."""
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        batch = len(y)
        for layer, pre, post in clamped_signals(self.network.layers, signals, target):
            correlation = post.t() @ post
            accumulate_grad(layer.weight, -(post.t() @ pre - correlation @ layer.weight) / batch)
            if layer.bias is not None:
                accumulate_grad(layer.bias, -(post.sum(0) - correlation @ layer.bias) / batch)
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register Hebbian learning with Oja's normalisation."""
    return [HebbianOja]
