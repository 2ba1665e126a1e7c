"""What a plugin may ask about devices: whether a tensor lives on an accelerator.

Plugins compute on the device of their inputs and parameters (``device=x.device``,
``*_like``, ``new_*``). Where the fastest way to do something differs between the
CPU and an accelerator (e.g. a per-batch hash computed on the host on the CPU but
on the device on a GPU, to avoid copying every batch to the host), a plugin asks
:func:`on_accelerator`. :func:`simulated_accelerator` makes the CPU answer as an
accelerator would, so tests exercise those branches on machines without one.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

_SIMULATED: contextvars.ContextVar[bool] = contextvars.ContextVar("biobench_simulated_accelerator", default=False)


def on_accelerator(device: torch.device) -> bool:
    """Whether ``device`` is an accelerator (anything but the CPU), or the CPU standing in for one."""
    return device.type != "cpu" or _SIMULATED.get()


@contextlib.contextmanager
def simulated_accelerator() -> Iterator[None]:
    """While active, :func:`on_accelerator` is True for the CPU too (tests of the accelerator code paths)."""
    token = _SIMULATED.set(True)
    try:
        yield
    finally:
        _SIMULATED.reset(token)
