"""Capability ``label_goodness``: networks that classify by the goodness of label-embedded passes."""

from __future__ import annotations

from biobench import hookimpl

LABEL_GOODNESS = "label_goodness"
DESCRIPTION = (
    "the label is part of the input and the logits are goodness scores: network.module.embed_label(x, "
    "labels) writes labels into the inputs, network.module.normalize(h) is the normalisation between "
    "layers, the plastic layers form a chain (layer 1 reads normalize(embed_label(x, label)), layer l "
    "reads normalize(output of layer l-1)), calling a layer on its input gives its activity with "
    "autograd in its own parameters, and logit k is the summed goodness (sum of squared activities) "
    "of the counted layers with label k embedded"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``label_goodness``."""
    return {LABEL_GOODNESS: DESCRIPTION}
