"""Counter-based random numbers computed where the data lives: a hash of a tensor's bits and a seed.

Architectures that draw noise from their input (the spiking networks' rate codes) use
these on accelerators, where a host generator would mean a copy of the batch to the
host. Integer arithmetic only (int64 tensors holding 32-bit values), so the numbers
are the same on every device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_LOW16, _LOW32 = 0xFFFF, 0xFFFFFFFF


def _mul32(x: Tensor, constant: int) -> Tensor:
    """``x * constant mod 2**32`` for int64 ``x`` in [0, 2**32), in 16-bit halves (no int64 overflow)."""
    high = (((x >> 16) * constant) & _LOW16) << 16
    return (high + (x & _LOW16) * constant) & _LOW32


def hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixer (Wellons' lowbias32) on int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def content_key(values: Tensor, seed: int) -> Tensor:
    """A 0-dim int64 key in [0, 2**32) on ``values``' device: a hash of their float32 bits (order included) and ``seed``."""
    flat = values.contiguous().view(torch.int32).reshape(-1).to(torch.int64) & _LOW32
    position = torch.arange(flat.numel(), device=values.device, dtype=torch.int64)
    content = hash32(flat ^ hash32(position & _LOW32)).sum() & _LOW32
    seed_bits = hash32(torch.tensor(seed & _LOW32, device=values.device)) ^ ((seed >> 32) & _LOW32)
    return hash32(content ^ hash32(seed_bits & _LOW32))


def keyed_uniform(key: Tensor, start: int, shape: tuple[int, ...]) -> Tensor:
    """Elements ``start``, ``start + 1``, ... of :func:`content_key` ``key``'s uniform sequence, as a ``shape`` tensor.

    Element ``i`` is ``hash32(hash32(i xor key) + key) / 2**32`` to 24 bits, on
    ``key``'s device; consecutive ranges continue one sequence, so a simulation can
    draw its steps one at a time.
    """
    count = math.prod(shape)
    index = torch.arange(start, start + count, device=key.device, dtype=torch.int64)
    mixed = hash32(((hash32((index & _LOW32) ^ key)) + key) & _LOW32)
    uniform = (mixed >> 8).to(torch.float32) * (1.0 / (1 << 24))
    return uniform.reshape(shape)
