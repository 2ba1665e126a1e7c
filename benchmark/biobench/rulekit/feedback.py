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

from biobench.plugin_api.hyperparameters import Hyperparameter, LogUniform
from biobench.plugin_api.interfaces import LearningRule, LossFn
from biobench.plugin_api.layers import FeedbackFn, PlasticLayer
from biobench.rulekit.initialization import INIT_CITATIONS, INIT_SCHEMES, init_matrix

#: The distributions a random feedback matrix may be drawn from: every scheme of
#: :data:`biobench.rulekit.initialization.INIT_SCHEMES` but ``zero``, which carries no error.
FEEDBACK_INITS: tuple[str, ...] = tuple(s for s in INIT_SCHEMES if s != "zero")


def feedback_init_options(default_source: str, scale_source: str) -> dict[str, Hyperparameter]:
    """The ``feedback_init`` and ``feedback_scale`` options of a rule with random feedback matrices.

    ``default_source`` says what the rule's ``default`` scheme means (which fan-in it
    divides by) and where it comes from; ``scale_source`` justifies the scale 1.
    Rules declare these two options through this function so that every rule
    accepts the same schemes (:func:`draw_feedback`).
    """
    return {
        "feedback_init": Hyperparameter(
            "default",
            f"{default_source}; the other schemes: uniform U(-s, s), gaussian N(0, s^2), "
            f"xavier_uniform, xavier_normal (gain s), kaiming_uniform, kaiming_normal (times s) "
            f"on the matrix as stored, fan_in = its columns, fan_out = its rows ({INIT_CITATIONS})",
            choices=FEEDBACK_INITS,
        ),
        "feedback_scale": Hyperparameter(
            1.0,
            f"{scale_source}; s: the bound's factor for default, the bound of uniform, the "
            "standard deviation of gaussian, the gain of xavier and kaiming",
            minimum=0.0,
            exclusive_minimum=True,
            search=LogUniform(0.1, 10.0),
        ),
    }


def draw_feedback(
    rows: int,
    columns: int,
    init: str,
    scale: float,
    generator: torch.Generator,
    default_fan_in: int | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """A fixed random (rows, columns) feedback matrix, drawn from ``generator`` on ``device`` (default: the CPU).

    The one helper every rule with random feedback matrices uses: ``init`` is a
    scheme of :data:`FEEDBACK_INITS` with scale ``scale`` (see
    :func:`biobench.rulekit.initialization.init_matrix`); ``default_fan_in`` is the
    ``n`` of the ``default`` scheme, U(-scale/sqrt(n), scale/sqrt(n)).
    """
    if init not in FEEDBACK_INITS:
        raise ValueError(f"unknown feedback initialisation {init!r}; known: {', '.join(FEEDBACK_INITS)}")
    return init_matrix(rows, columns, init, float(scale), generator, default_fan_in=default_fan_in, device=device)


def uniform_feedback(
    rows: int, columns: int, fan_in: int, scale: float, generator: torch.Generator
) -> Tensor:
    """A (rows, columns) matrix drawn from U(-scale/sqrt(fan_in), scale/sqrt(fan_in)).

    The ``default`` scheme of :func:`draw_feedback`, which new code should call.
    """
    return draw_feedback(rows, columns, "default", scale, generator, default_fan_in=fan_in)


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
