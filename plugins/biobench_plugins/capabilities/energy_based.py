"""Capability ``energy_based``: a network whose output is the fixed point of relaxation dynamics."""

from __future__ import annotations

from biobench import hookimpl

ENERGY_BASED = "energy_based"
DESCRIPTION = (
    "the network module relaxes a layered state to a fixed point: module.zero_state(batch) gives "
    "the initial state (one tensor per plastic layer), module.relax(x, state, steps, nudge=None) "
    "runs synchronous steps s_l <- rho(dPhi/ds_l) with nudge(s_L) added to the output layer's net "
    "input, module.free_steps is the length of the free phase, module.primitive(x, state) returns "
    "the primitive function Phi summed over the batch (its parameter gradient is a sum of local "
    "products of the states a synapse connects), and forward(x) is the free phase from "
    "zero_state, returning the output layer's state as logits"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``energy_based``."""
    return {ENERGY_BASED: DESCRIPTION}
