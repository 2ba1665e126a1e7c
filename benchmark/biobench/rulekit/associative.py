"""Building blocks of the associative STDP-derived rules for rate networks (Gupta 2020)."""

from __future__ import annotations

import torch
from torch import Tensor


def gupta_stdp_change(pre: Tensor, post: Tensor, epsilon: float) -> Tensor:
    """Gupta's eq. 3 without eta and Z: ``x^3 p (x - p) / ((2p - x)^2 + epsilon)``.

    ``pre`` (batch, in) and ``post`` (batch, out) rates in [0, 1]; returns (batch, out, in),
    the change of the synapse from pre-synaptic unit ``i`` (rate ``x``) to
    post-synaptic unit ``k`` (rate ``p``) for each example.
    """
    x = pre[:, None, :]
    p = post[:, :, None]
    change = x - p  # two (batch, out, in) buffers, updated in place
    denominator = change - p  # x - 2p
    denominator.square_().add_(epsilon)
    return change.mul_(p).mul_(x.pow(3)).div_(denominator)


def balanced_signs(count: int, generator: torch.Generator) -> Tensor:
    """``count`` signs, half +1 and half -1 (one more +1 when odd), in random order."""
    signs = torch.ones(count)
    signs[count - count // 2 :] = -1.0
    return signs[torch.randperm(count, generator=generator)]
