"""Capability ``bounded_rate``: unit activities that are firing rates in [0, 1]."""

from __future__ import annotations

from biobench import hookimpl

BOUNDED_RATE = "bounded_rate"
DESCRIPTION = (
    "every hidden plastic layer's post-synaptic activity lies in [0, 1] (e.g. sigmoid units) and the "
    "logits are the drives of sigmoid output units, whose rates are sigmoid(logits)"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``bounded_rate``."""
    return {BOUNDED_RATE: DESCRIPTION}
