"""Capability ``layer_chain``: the plastic layers form a chain from the input to the logits."""

from __future__ import annotations

from biobench import hookimpl

LAYER_CHAIN = "layer_chain"
DESCRIPTION = (
    "the plastic layers, called as functions in layer order, form the whole network: "
    "logits = layers[-1](... layers[1](layers[0](architecture.chain_input(x)))), where "
    "architecture.chain_input(x) is the first layer's input (the batch itself unless the "
    "architecture rescales it); each layer's output is the next layer's input and no other "
    "computation sits between them (layers may be evaluated on any input, e.g. a relaxed value node)"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``layer_chain``."""
    return {LAYER_CHAIN: DESCRIPTION}
