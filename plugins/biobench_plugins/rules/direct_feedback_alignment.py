"""Direct feedback alignment (Nøkland 2016): the output error reaches every hidden layer directly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from biobench import (
    FeedbackFn,
    LearningRule,
    LossFn,
    Network,
    draw_feedback,
    feedback_init_options,
    hookimpl,
)


class DirectFeedbackAlignment(LearningRule):
    """Direct feedback alignment (Nøkland 2016).

    With ``e = dL/d(logits)`` the output error, hidden layer ``l`` gets
    ``delta_l = (e D_l) * f'(u_l)`` through its own fixed random matrix ``D_l`` of
    shape ``(num_classes, out_features_l)``; every layer's update is the local one,
    ``dW_l = -eta delta_l x_{l-1}^T`` (the output layer's delta is ``e`` itself).

    Implementation through the generic ``layer.feedback`` hook: each plastic layer
    ``k >= 1`` gets a feedback function that ignores the gradient arriving at its
    output and returns ``e D_{k-1}`` as the gradient of its input, i.e. of layer
    ``k-1``'s output; autograd then applies ``f'`` and the local outer products.
    ``e`` is taken with ``torch.autograd.grad(loss, logits)`` before
    ``logits.backward(e)``. This assumes the plastic layers form a chain (layer
    ``k``'s input is layer ``k-1``'s output), as in the MLP, the KAN and spiking MLPs.
    ``feedback_weights()`` gives ``D_l`` keyed by the layer whose *output* receives
    it (every layer but the last).

    Spiking networks (``time``): a layer called once per time step receives the same
    ``e D`` at every step (one error per sample, computed from the readout over the
    whole presentation); autograd then carries it through the layer's neuron
    dynamics. For rate (non-spiking) networks the update is Nøkland's exactly.

    ``D_l`` is drawn once at ``bind`` (:func:`biobench.draw_feedback`): by default
    from U(-s/sqrt(C), s/sqrt(C)) with ``C = num_classes`` (the feedback map's
    fan-in) and ``s = feedback_scale``. Nøkland's code draws U(-1/sqrt(n_l),
    1/sqrt(n_l)) with ``n_l`` the layer's width: ``feedback_init=uniform`` with
    ``feedback_scale = 1/sqrt(n_l)`` gives it, and ``kaiming_uniform`` (fan-in =
    ``n_l``, the matrix's columns) is Frenkel et al.'s (2021) U(-sqrt(6/n_l), sqrt(6/n_l)).
    """

    name = "direct_feedback_alignment"
    description = "Direct feedback alignment: the output error reaches each hidden layer via a fixed random matrix"
    citation = (
        "Nøkland (2016), Direct feedback alignment provides learning in deep neural networks, "
        "NeurIPS 29"
    )
    family = "feedback alignment"
    requires = frozenset({"differentiable", "feedback"})
    weight_transport = False
    global_error = True
    defaults = feedback_init_options(
        "default: D_l ~ U(-s/sqrt(num_classes), s/sqrt(num_classes)), uniform (Nøkland 2016) with "
        "the fan-in of the feedback map in PyTorch's nn.Linear bound",
        "s = 1: PyTorch's nn.Linear bound for the feedback map",
    )

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw one fixed random (num_classes, out_features) matrix per layer but the last."""
        super().bind(network, generator)
        layers = network.layers
        self.num_classes = layers[-1].out_features
        init, scale = self.config["feedback_init"], float(self.config["feedback_scale"])
        self._buffer_of: dict[str, str] = {}
        self._output_error: Tensor | None = None
        for index, layer in enumerate(layers[:-1]):
            receiver = layers[index + 1]
            if receiver.in_features != layer.out_features:
                raise ValueError(
                    f"direct feedback alignment needs a chain of plastic layers: layer "
                    f"{receiver.layer_name!r} has {receiver.in_features} inputs but "
                    f"{layer.layer_name!r} has {layer.out_features} outputs"
                )
            matrix = draw_feedback(
                self.num_classes, layer.out_features, init, scale, generator, default_fan_in=self.num_classes
            )
            buffer_name = f"direct_feedback_{index}"
            self.register_buffer(buffer_name, matrix)
            self._buffer_of[layer.layer_name] = buffer_name

    def _matrix(self, layer_name: str) -> Tensor:
        return getattr(self, self._buffer_of[layer_name])

    def _projected_error(self, matrix: Tensor) -> FeedbackFn:
        def feedback(g_out: Tensor) -> Tensor:
            if self._output_error is None:
                raise RuntimeError("direct feedback alignment: no output error during backward")
            g_in = self._output_error @ matrix
            shape = (*g_out.shape[:-1], matrix.shape[1])
            return torch.broadcast_to(g_in, shape)

        return feedback

    @contextmanager
    def _feedback_installed(self) -> Iterator[None]:
        layers = self.network.layers
        saved = [layer.feedback for layer in layers[1:]]
        try:
            for index, layer in enumerate(layers[1:]):
                sender = layers[index]
                layer.feedback = self._projected_error(self._matrix(sender.layer_name))
            yield
        finally:
            for layer, previous in zip(layers[1:], saved, strict=True):
                layer.feedback = previous
            self._output_error = None

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Project the output error to every hidden layer through its own fixed matrix."""
        with self._feedback_installed():
            logits = self.network(x)
            loss = loss_fn(logits, y)
            (error,) = torch.autograd.grad(loss, logits, retain_graph=True)
            if error.shape[-1] != self.num_classes:
                raise ValueError(
                    f"logits have {error.shape[-1]} classes but the last plastic layer has "
                    f"{self.num_classes} outputs"
                )
            self._output_error = error.detach()
            logits.backward(error)
        return loss.detach(), logits.detach()

    def feedback_weights(self) -> dict[str, Tensor]:
        """``D_l`` by the name of the layer whose output receives it, shape (num_classes, out_features)."""
        return {name: self._matrix(name).detach().clone() for name in self._buffer_of}


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register direct feedback alignment."""
    return [DirectFeedbackAlignment]
