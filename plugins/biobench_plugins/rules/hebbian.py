"""Naive baseline: supervised Hebbian learning, pre x post correlations, output units clamped to the target.

No normalisation and no competition: the weights grow without bound, and the rule is
expected to fail. The working Hebbian baselines are ``hebbian_oja`` (Oja's
normalisation), ``krotov_hopfield`` and ``softhebb`` (competitive hidden layers).
"""

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


class SupervisedHebbian(LearningRule):
    """Naive baseline: plain supervised Hebbian learning (Hebb 1949), output clamped to the one-hot target.

    One forward pass records every layer's pre- and post-synaptic rates; the
    output layer's post-synaptic activity is then clamped to the one-hot target
    ``t`` and every synapse grows with the product of its rates, averaged over the
    batch of size ``B``:

        dW_l = eta (1/B) sum_n post_{l,n} pre_{l,n}^T,   db_l = eta (1/B) sum_n post_{l,n}

    (the bias is a synapse from a unit that is always on). Nothing bounds the
    weights: every synapse whose pre- and post-synaptic units are active grows, so
    the weights grow without bound and the rule is expected to fail (it stays near
    chance). Written into ``.grad`` as ``-dW / eta`` (descent convention); Adam
    applies it.
    """

    name = "hebbian"
    description = (
        "Naive baseline: supervised Hebbian learning, output clamped to the target, no "
        "normalisation: expected to fail"
    )
    citation = "Hebb (1949), The Organization of Behavior, Wiley (supervised by clamping the output)"
    family = "hebbian"
    requires = frozenset({"signals", "dense", "rate"})
    weight_transport = False
    global_error = False

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write ``-(1/B) sum_n post pre^T`` (output clamped to the target) into ``.grad``."""
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        batch = len(y)
        for layer, pre, post in clamped_signals(self.network.layers, signals, target):
            accumulate_grad(layer.weight, -(post.t() @ pre) / batch)
            if layer.bias is not None:
                accumulate_grad(layer.bias, -post.mean(0))
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register supervised Hebbian learning."""
    return [SupervisedHebbian]
