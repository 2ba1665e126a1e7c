"""Feedback alignment (Lillicrap et al. 2016): fixed random matrices carry the error backwards.

Built on :class:`biobench.FeedbackPathwayRule`, the common base of the rules that keep
backprop's local updates but replace the transported forward weights by a feedback
matrix per layer (feedback alignment, sign symmetry, Kolen-Pollack).
"""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import (
    FeedbackPathwayRule,
    LearningRule,
    Network,
    PlasticLayer,
    draw_feedback,
    feedback_init_options,
    hookimpl,
)


class FeedbackAlignment(FeedbackPathwayRule):
    """Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016).

    The error reaching a layer's input goes through a fixed random matrix ``B_l``
    instead of the transposed forward weights:
    ``delta_{l-1} = (delta_l B_l) * f'(u_{l-1})`` (row-vector convention, ``B_l`` of
    shape (out, in) like ``W_l``), and every layer's update is the local one,
    ``dW_l = -eta delta_l x_{l-1}^T``. The forward weights come to align with
    ``B_l`` during learning. ``B_l`` is drawn once at ``bind`` from
    U(-s/sqrt(in), s/sqrt(in)) with ``s = feedback_scale``.
    """

    name = "feedback_alignment"
    description = "Feedback alignment: fixed random feedback matrices replace the transposed weights"
    citation = (
        "Lillicrap, Cownden, Tweed & Akerman (2016), Random synaptic feedback weights support "
        "error backpropagation for deep learning, Nature Communications 7:13276"
    )
    family = "feedback alignment"
    defaults = feedback_init_options(
        "default: B_l ~ U(-s/sqrt(in), s/sqrt(in)), uniform as in Lillicrap et al. 2016 with the "
        "forward layer's own bound 1/sqrt(fan_in) (PyTorch nn.Linear initialisation)",
        "s = 1: the same bound as the forward weights (Lillicrap et al. 2016 give no value of beta)",
    )

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw one fixed random feedback matrix per layer after the first."""
        super().bind(network, generator)
        self._buffer_of: dict[str, str] = {}
        init, scale = self.config["feedback_init"], float(self.config["feedback_scale"])
        for index, layer in enumerate(network.layers):
            if index == 0:
                continue
            matrix = draw_feedback(
                layer.out_features, layer.in_features, init, scale, generator, default_fan_in=layer.in_features
            )
            buffer_name = f"feedback_{index}"
            self.register_buffer(buffer_name, matrix)
            self._buffer_of[layer.layer_name] = buffer_name

    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """The fixed random matrix of ``layer``."""
        return getattr(self, self._buffer_of[layer.layer_name])


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register feedback alignment."""
    return [FeedbackAlignment]
