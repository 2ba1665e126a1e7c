"""Error backpropagation: the exact gradient of the task loss (the harness's reference rule)."""

from __future__ import annotations

from torch import Tensor

from biobench import LearningRule, LossFn, hookimpl


class Backprop(LearningRule):
    """Backpropagation (Rumelhart, Hinton & Williams 1986).

    Update: ``dW_l = -eta * dL/dW_l = -eta * delta_l x_{l-1}^T`` with
    ``delta_l = (W_{l+1}^T delta_{l+1}) * f'(u_l)`` and ``delta_L = dL/du_L``.
    Written into ``.grad`` as ``dL/dW`` (descent convention); for spiking networks
    autograd follows the architecture's surrogate gradient through time (BPTT).
    """

    name = "backprop"
    description = "Backpropagation of the loss gradient (reference; uses weight transport)"
    citation = "Rumelhart, Hinton & Williams (1986), Learning representations by back-propagating errors, Nature 323"
    family = "reference"
    requires = frozenset({"differentiable"})
    weight_transport = True
    global_error = True
    is_reference = True

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write dL/dtheta into ``.grad`` of every network parameter."""
        with self.network.plain():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register backpropagation."""
    return [Backprop]
