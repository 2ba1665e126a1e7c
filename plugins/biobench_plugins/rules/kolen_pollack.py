"""Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019): feedback weights learn the forward ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from biobench import (
    FeedbackFn,
    FeedbackPathwayRule,
    Hyperparameter,
    LearningRule,
    LogUniform,
    Network,
    OptimizerSettings,
    PlasticLayer,
    accumulate_grad,
    build_optimizer,
    draw_feedback,
    feedback_init_options,
    hookimpl,
)


class KolenPollack(FeedbackPathwayRule):
    """Kolen-Pollack learning (Kolen & Pollack 1994), as a local circuit in Akrout et al. (2019).

    Errors travel backwards through learned feedback matrices ``B_l`` (shape
    (out, in), like ``W_l``; ``delta_{l-1} = (delta_l B_l) * f'(u_{l-1})``). Both
    the forward and the feedback synapses get the same update plus weight decay
    (Akrout et al. 2019, eqs. 16-17, written in the (out, in) convention):

        dW_l = -eta delta_l x_{l-1}^T - lambda W_l
        dB_l = -eta delta_l x_{l-1}^T - lambda B_l

    so ``W_l(t) - B_l(t) = (1 - lambda)^t (W_l(0) - B_l(0))``: the feedback converges
    to the forward matrix (the forward transpose in the usual column convention).

    Implementation: ``B_l.grad`` receives ``sum g_out^T x_in`` over the batch (and
    over time steps for spiking layers), accumulated in the feedback function of
    each forward call; for dense layers this equals ``W_l.grad`` (a test checks it),
    for other layers (KAN) it is the update a dense synapse matrix in ``B_l``'s
    place would get. The decay is applied by the optimiser, to every ``W_l`` that has
    a feedback matrix and to that ``B_l`` only (the run's ``weight_decay``). With the
    default AdamW (decoupled weight decay, Loshchilov & Hutter 2019) both receive
    identical Adam steps and the same shrinking factor ``1 - lr * weight_decay`` per
    step, the exact Kolen-Pollack contraction; with ``--optimizer sgd`` the decay is
    the L2 term of the equations above, as in the paper.
    ``.grad`` holds the learning signal only, so the harness measures it, not the
    decay. ``B_l`` starts as a random matrix drawn as feedback alignment's
    (:func:`biobench.draw_feedback`, options ``feedback_init`` and ``feedback_scale``).
    """

    name = "kolen_pollack"
    description = "Kolen-Pollack: feedback weights get the forward weights' updates plus weight decay"
    citation = (
        "Kolen & Pollack (1994), Backpropagation without weight transport, IEEE ICNN; "
        "Akrout, Wilson, Humphreys, Lillicrap & Tweed (2019), Deep learning without weight "
        "transport, NeurIPS 32"
    )
    family = "feedback alignment"
    optimizer = {
        "name": Hyperparameter("adamw", "decoupled weight decay (Loshchilov & Hutter 2019) for the KP contraction"),
        "weight_decay": Hyperparameter(
            1e-2,
            "AdamW default (Loshchilov & Hutter 2019): with lr 1e-3 a contraction of 1e-5 per "
            "step, the same as SGD with lr 0.1 and weight decay 1e-4 in the ImageNet ResNet "
            "recipe (He et al. 2016) that Akrout et al. 2019 train",
            minimum=0.0,
            search=LogUniform(1e-4, 1e-1),
        ),
    }
    defaults = feedback_init_options(
        "default: initial B_l ~ U(-s/sqrt(in), s/sqrt(in)), drawn like feedback alignment's",
        "s = 1: the forward layer's own nn.Linear bound, as feedback alignment's",
    )

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the initial feedback matrices (trainable parameters of the rule)."""
        super().bind(network, generator)
        init, scale = self.config["feedback_init"], float(self.config["feedback_scale"])
        self.feedback_matrices = nn.ParameterDict()
        self._key_of: dict[str, str] = {}
        for index, layer in enumerate(network.layers):
            if index == 0:
                continue
            key = str(index)
            self.feedback_matrices[key] = nn.Parameter(
                draw_feedback(
                    layer.out_features, layer.in_features, init, scale, generator,
                    default_fan_in=layer.in_features,
                )
            )
            self._key_of[layer.layer_name] = key

    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """The learned feedback matrix of ``layer`` (an ``nn.Parameter`` of the rule)."""
        return self.feedback_matrices[self._key_of[layer.layer_name]]

    @staticmethod
    def _feedback_with_update(matrix: nn.Parameter, pre: Tensor) -> FeedbackFn:
        """``g_out -> g_out @ B``, accumulating ``g_out^T pre`` into ``B.grad`` on the way."""

        def feedback(g_out: Tensor) -> Tensor:
            update = g_out.reshape(-1, g_out.shape[-1]).t() @ pre.reshape(-1, pre.shape[-1])
            accumulate_grad(matrix, update)
            return g_out @ matrix.detach()

        return feedback

    @contextmanager
    def feedback_installed(self) -> Iterator[None]:
        """Before each forward call of a layer, install a feedback function that knows its input."""
        layers = self.feedback_layers()
        saved = [layer.feedback for layer in layers]
        handles = []

        def hook_for(matrix: nn.Parameter, layer: PlasticLayer):
            def before_forward(module: nn.Module, args: tuple[Any, ...]) -> None:
                pre = args[0].detach()
                if pre.shape[-1] != layer.in_features:
                    raise ValueError(
                        f"layer {layer.layer_name!r}: input has {pre.shape[-1]} features, "
                        f"expected in_features={layer.in_features}"
                    )
                module.feedback = self._feedback_with_update(matrix, pre)

            return before_forward

        try:
            for layer in layers:
                handles.append(layer.register_forward_pre_hook(hook_for(self.feedback_matrix(layer), layer)))
            yield
        finally:
            for handle in handles:
                handle.remove()
            for layer, previous in zip(layers, saved, strict=True):
                layer.feedback = previous

    def configure_optimizer(
        self, params: list[nn.Parameter], settings: OptimizerSettings | None = None
    ) -> torch.optim.Optimizer:
        """The run's optimiser, with its weight decay on each paired forward weight and feedback matrix only."""
        settings = settings or OptimizerSettings.resolve(self.optimizer)
        paired = {id(layer.weight) for layer in self.feedback_layers()}
        paired |= {id(p) for p in self.feedback_matrices.parameters()}
        decayed = [p for p in params if id(p) in paired]
        others = [p for p in params if id(p) not in paired]
        groups = [
            {"params": decayed, "weight_decay": settings.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ]
        return build_optimizer([g for g in groups if g["params"]], settings)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register Kolen-Pollack."""
    return [KolenPollack]
