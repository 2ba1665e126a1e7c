"""Supervised Hebbian learning of KAN spline coefficients (output nodes clamped to the target)."""

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


class KANHebbian(LearningRule):
    """Plain supervised Hebbian learning (Hebb 1949) mapped onto KAN edges.

    The dense rule ``dW_{oi} = eta (1/B) sum_n post_{n,o} pre_{n,i}`` multiplies the
    post-synaptic activity with the pre-synaptic factor of each synapse,
    ``pre_i = du_o/dW_{oi}``. On a KAN edge ``i -> o`` the node sum is linear in every
    parameter, and the pre-synaptic factors are the local derivatives of the node sum
    (see :mod:`biobench_plugins.kan`): the B-spline basis activation ``B_k(x_i)`` for a
    coefficient, the base activation ``b(x_i)`` for ``scale_base`` and the edge's spline
    output for ``scale_sp``. With the output nodes clamped to the one-hot target ``t``
    (post = node sums for hidden layers, ``t`` for the output layer):

        dcoef_{iok}       = eta (1/B) sum_n post_{n,o} scale_sp_{io} B_k(x_{n,i})
        dscale_base_{io}  = eta (1/B) sum_n post_{n,o} b(x_{n,i})
        dscale_sp_{io}    = eta (1/B) sum_n post_{n,o} sum_k coef_{iok} B_k(x_{n,i})

    (all times the fixed edge mask, 1 in this architecture). ``scale_sp`` multiplies
    every coefficient of its edge, so ``scale_sp_{io} B_k(x_i)`` is exactly the
    coefficient's pre-synaptic factor; with ``scale_sp`` at its initial
    ``1/sqrt(in)`` this is ``c_{iok} += eta' post_o B_k(x_i)``. Nothing bounds the
    parameters, as in the plain Hebbian rule; written into ``.grad`` as ``-d/eta``
    (descent convention), Adam applies it.
    """

    name = "kan_hebbian"
    description = "Supervised Hebbian learning of KAN spline coefficients, output clamped to the target"
    citation = (
        "Hebb (1949), The Organization of Behavior, Wiley (supervised by clamping the output); "
        "KAN edges: Liu et al. (2024), KAN: Kolmogorov-Arnold Networks, arXiv:2404.19756"
    )
    family = "hebbian"
    requires = frozenset({"signals", "kan_splines"})
    weight_transport = False
    global_error = False

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write ``-(1/B) sum_n post_n du_n/dtheta`` (output clamped to the target) into ``.grad``."""
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        batch = len(y)
        clamped = clamped_signals(self.network.layers, signals, target)
        for (layer, _, post), signal in zip(clamped, signals, strict=True):
            if signal is None or "basis" not in signal.extras:
                raise TypeError(f"layer {layer.layer_name!r} recorded no spline basis activations")
            update = layer.node_factor_update(post / batch, signal)
            for name, value in update.items():
                accumulate_grad(getattr(layer, name), -value)
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register supervised Hebbian learning for KANs."""
    return [KANHebbian]
