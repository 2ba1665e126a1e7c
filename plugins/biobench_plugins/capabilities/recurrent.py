"""Capability ``recurrent``: a recurrent spiking network with a leaky, non-spiking readout."""

from __future__ import annotations

from biobench import hookimpl

RECURRENT = "recurrent"
DESCRIPTION = (
    "a recurrent network of leaky integrate-and-fire neurons with a leaky readout: plastic layers "
    "'in' (input -> neurons), 'rec' (neurons -> neurons, no self-connections: module.rec_mask) and "
    "'out' (neurons -> readout); v^t = alpha v^{t-1} + W_in x^t + W_rec z^{t-1} - v_th z^{t-1}, "
    "z^t = H(v^t - v_th), y^t = kappa y^{t-1} + W_out z^t + b_out; the module exposes alpha, kappa, "
    "threshold, pseudo_derivative(v) (the surrogate dz/dv that autograd uses) and readout(y) "
    "(logits from the readout sequence); forward_with_signals records per step, time first: "
    "'in' pre x^t, 'rec' pre z^{t-1}, 'in'/'rec' post z^t and membrane v^t, 'out' pre z^t and post y^t"
)


@hookimpl
def biobench_register_capabilities() -> dict[str, str]:
    """Declare ``recurrent``."""
    return {RECURRENT: DESCRIPTION}
