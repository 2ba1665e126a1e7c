"""Sign symmetry (Liao, Leibo & Poggio 2016): feedback through the signs of the forward weights."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import FeedbackPathwayRule, LearningRule, PlasticLayer, hookimpl


class SignSymmetry(FeedbackPathwayRule):
    """Sign symmetry (Liao, Leibo & Poggio 2016).

    The error reaching a layer's input goes through ``B_l = sign(W_l)``, the signs of
    the current forward matrix (``layer.forward_matrix()``) with unit magnitudes:
    ``delta_{l-1} = (delta_l sign(W_l)) * f'(u_{l-1})``; each layer's update is the
    local one, ``dW_l = -eta delta_l x_{l-1}^T``. Only the sign of each forward
    synapse is transported, never its magnitude, so ``weight_transport`` is True.
    """

    name = "sign_symmetry"
    description = "Sign symmetry: feedback through the signs of the forward weights"
    citation = (
        "Liao, Leibo & Poggio (2016), How important is weight symmetry in backpropagation?, "
        "AAAI 2016"
    )
    family = "feedback alignment"
    weight_transport = True

    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """``sign(forward_matrix())`` of ``layer``, read at the time of the update."""
        return torch.sign(layer.forward_matrix().detach())


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register sign symmetry."""
    return [SignSymmetry]
