"""Building blocks of the feedback-pathway rules (feedback alignment and its relatives).

:class:`FeedbackPathwayRule` keeps backprop's local updates but replaces the
transported forward weights by a feedback matrix per layer. It only uses the
generic ``layer.feedback`` hook of :class:`biobench.PlasticLayer`, so a rule built
on it trains every architecture whose layers honour the hook (dense MLPs, spiking
networks built from ``PlasticLinear`` synapses, KANs).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from biobench.plugin_api.interfaces import LearningRule, LossFn
from biobench.plugin_api.layers import FeedbackFn, PlasticLayer


def uniform_feedback(
    rows: int, columns: int, fan_in: int, scale: float, generator: torch.Generator
) -> Tensor:
    """A (rows, columns) matrix drawn from U(-scale/sqrt(fan_in), scale/sqrt(fan_in))."""
    bound = scale / fan_in**0.5
    return (torch.rand(rows, columns, generator=generator) * 2.0 - 1.0) * bound


class FeedbackPathwayRule(LearningRule):
    """Backprop's local updates with ``g_in = g_out @ B_l`` instead of ``g_out @ W_l``.

    Every plastic layer except the first gets a feedback function (the network's
    input needs no gradient). ``B_l`` has the shape of the layer's forward matrix,
    ``(layer.out_features, layer.in_features)``; subclasses say what it is. Each
    layer's own parameters keep their exact local gradient ``g_out x_in^T``, so with
    ``B_l = forward_matrix()`` the update is backprop's exactly.
    """

    requires = frozenset({"differentiable", "feedback"})
    weight_transport = False
    global_error = True

    def feedback_layers(self) -> list[PlasticLayer]:
        """The layers whose input gradient goes through a feedback matrix: all but the first."""
        return list(self.network.layers[1:])

    @abc.abstractmethod
    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """The current (out_features, in_features) feedback matrix of ``layer``."""

    def make_feedback(self, layer: PlasticLayer) -> FeedbackFn:
        """The function ``g_out -> g_out @ B`` installed on ``layer`` for one update."""
        matrix = self.feedback_matrix(layer).detach()

        def feedback(g_out: Tensor) -> Tensor:
            return g_out @ matrix

        return feedback

    @contextmanager
    def feedback_installed(self) -> Iterator[None]:
        """Install the feedback functions on the layers, restoring the previous ones afterwards."""
        layers = self.feedback_layers()
        saved = [layer.feedback for layer in layers]
        try:
            for layer in layers:
                layer.feedback = self.make_feedback(layer)
            yield
        finally:
            for layer, previous in zip(layers, saved, strict=True):
                layer.feedback = previous

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Backward pass with the feedback matrices in place of the transported weights."""
        with self.feedback_installed():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            loss.backward()
        return loss.detach(), logits.detach()

    def feedback_weights(self) -> dict[str, Tensor]:
        """Feedback matrix of each layer after the first, shape ``(out_features, in_features)``."""
        return {
            layer.layer_name: self.feedback_matrix(layer).detach().clone()
            for layer in self.feedback_layers()
        }
