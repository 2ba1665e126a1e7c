"""Capability ``assigned_readout``: an unsupervised spiking layer read out through neuron-to-class assignments."""

from __future__ import annotations

from biobench import hookimpl

ASSIGNED_READOUT = "assigned_readout"
DESCRIPTION = (
    "one plastic layer of spiking neurons learnt without labels, whose logits are the mean spike counts "
    "of the neurons assigned to each class; the assignments and the neurons' adaptive thresholds are "
    "network state (network.module.assignments, .theta) that a rule updates, and the layer's recorded "
    "signals are time-major input and output spike trains"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``assigned_readout``."""
    return {ASSIGNED_READOUT: DESCRIPTION}
