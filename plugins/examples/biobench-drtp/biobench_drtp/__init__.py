"""Direct random target projection (DRTP), a biobench learning-rule plugin.

Frenkel, Lefebvre & Bol (2021), "Learning without feedback: Fixed random learning
signals allow for feedforward training of deep neural networks", Frontiers in
Neuroscience 15:629892.

Hidden layer k receives no error at all: its modulatory signal is the one-hot
target ``y*`` projected through a fixed random matrix ``B_k`` (classes x units)::

    delta_k = (B_k^T y*) * f'(z_k),        dW_k = -eta * delta_k h_{k-1}^T

The output layer is trained with its own local error (``dL/dz_out h^T``). The sign
of ``B_k`` is immaterial, since ``B_k`` is drawn from a zero-mean distribution.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from biobench import Hyperparameter, LearningRule, LossFn, hookimpl


class DirectRandomTargetProjection(LearningRule):
    """DRTP: hidden layers learn from fixed random projections of the target, not of the error."""

    name = "drtp"
    description = "Direct random target projection: hidden layers learn from a random projection of the label"
    citation = (
        "Frenkel, Lefebvre & Bol (2021), Learning without feedback: Fixed random learning signals "
        "allow for feedforward training of deep neural networks, Front. Neurosci. 15:629892"
    )
    family = "target projection"
    requires = frozenset({"differentiable", "feedback"})
    weight_transport = False
    global_error = False
    defaults = {
        "feedback_scale": Hyperparameter(
            "uniform(+-1/sqrt(classes))", "zero-mean fixed random projection, like PyTorch's Linear init"
        ),
    }

    def bind(self, network, generator: torch.Generator) -> None:
        """Draw one fixed (classes x units) projection per hidden layer output."""
        super().bind(network, generator)
        classes = network.layers[-1].out_features
        bound = 1.0 / classes**0.5
        self._targets: Tensor | None = None
        for i, layer in enumerate(network.layers[1:]):
            matrix = (torch.rand(classes, layer.in_features, generator=generator) * 2 - 1) * bound
            self.register_buffer(f"projection_{i}", matrix)
            layer.feedback = self._projector(i)

    def _projector(self, index: int):
        def feedback(grad_out: Tensor) -> Tensor:
            if self._targets is None:
                raise RuntimeError("DRTP feedback used outside compute_update")
            return self._targets @ getattr(self, f"projection_{index}")

        return feedback

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Output layer: local error; hidden layers: projected one-hot target."""
        classes = self.network.layers[-1].out_features
        self._targets = F.one_hot(y, classes).to(x.dtype)
        try:
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        finally:
            self._targets = None
        return loss.detach(), logits.detach()

    def feedback_weights(self) -> dict[str, Tensor]:
        """The projections, keyed by the hidden layer whose output receives them."""
        layers = self.network.layers
        return {layers[i].layer_name: getattr(self, f"projection_{i}") for i in range(len(layers) - 1)}


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register DRTP."""
    return [DirectRandomTargetProjection]
