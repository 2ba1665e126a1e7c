"""Capability ``kan_splines``: layers with B-spline edges whose coefficients rules can train."""

from __future__ import annotations

from biobench import hookimpl

KAN_SPLINES = "kan_splines"
DESCRIPTION = (
    "B-spline edge layers: weight = spline coefficients (in, out, G+k), signals carry the basis "
    "activations (extras 'basis' and 'base') and layer.node_factor_update maps a per-node factor "
    "onto every coefficient and scale"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``kan_splines``."""
    return {KAN_SPLINES: DESCRIPTION}
