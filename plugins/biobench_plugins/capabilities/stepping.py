"""Capability ``stepping``: spiking layers that can be simulated on their own, one time step per call."""

from __future__ import annotations

from biobench import hookimpl

STEPPING = "stepping"
DESCRIPTION = (
    "each plastic layer can be simulated on its own, one time step per call "
    "(reset_state(), then layer(x_t) with x_t of shape (batch, in))"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``stepping``."""
    return {STEPPING: DESCRIPTION}
