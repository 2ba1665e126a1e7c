"""Spike traces shared by the spiking rules: exponentially decaying traces in discrete time."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def decay_per_step(tau: float) -> float:
    """The factor ``exp(-1 / tau)`` by which a trace with time constant ``tau`` (in steps) decays per step."""
    if tau <= 0:
        raise ValueError(f"time constant must be positive, got {tau}")
    return math.exp(-1.0 / tau)


def exponential_trace(spikes: Tensor, decay: float) -> Tensor:
    """``x[t] = decay * x[t-1] + s[t]`` with ``x[-1] = 0``, along the leading (time) dimension.

    The trace includes the spike of the current step, so it sums every spike at or
    before ``t`` weighted by ``decay ** (t - t_spike)``.
    """
    steps = spikes.shape[0]
    t = torch.arange(steps, dtype=spikes.dtype, device=spikes.device)
    lag = t[:, None] - t[None, :]
    kernel = torch.where(lag >= 0, decay ** lag.clamp(min=0), torch.zeros((), dtype=spikes.dtype, device=spikes.device))
    return (kernel @ spikes.reshape(steps, -1)).reshape(spikes.shape)
