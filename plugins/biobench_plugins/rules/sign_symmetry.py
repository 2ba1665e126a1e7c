"""Sign symmetry (Liao, Leibo & Poggio 2016): feedback through the signs of the forward weights."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import (
    FeedbackPathwayRule,
    Hyperparameter,
    LearningRule,
    LossFn,
    Network,
    PlasticLayer,
    derived_generator,
    draw_feedback,
    feedback_init_options,
    hookimpl,
)

#: Magnitudes of the feedback weights: unit, fixed random, or random redrawn for every update.
MAGNITUDES = ("unit", "fixed_random", "batch_random")


class SignSymmetry(FeedbackPathwayRule):
    """Sign symmetry (Liao, Leibo & Poggio 2016).

    The error reaching a layer's input goes through feedback weights with the signs
    of the current forward matrix (``layer.forward_matrix()``):
    ``delta_{l-1} = (delta_l B_l) * f'(u_{l-1})`` with ``B_l = sign(W_l) * |M_l|``;
    each layer's update is the local one, ``dW_l = -eta delta_l x_{l-1}^T``. Only
    the sign of each forward synapse is transported, never its magnitude, so
    ``weight_transport`` is True.

    ``magnitude`` chooses ``|M_l|``: ``unit`` (default, ``B_l = sign(W_l)``, the
    variant usually called uSF), ``fixed_random`` (``M_l`` drawn once at ``bind``,
    frSF) or ``batch_random`` (``M_l`` drawn anew for every update from the rule's
    own generator, brSF); random magnitudes come from :func:`biobench.draw_feedback`
    with ``feedback_init`` and ``feedback_scale`` (by default U(-s/sqrt(in),
    s/sqrt(in)), so ``|M|`` is U(0, s/sqrt(in))). Liao et al.'s abstract reports that
    random magnitudes with concordant signs learn as well as SGD; the variant names
    come from the later literature. The paper's Batch Manhattan update and batch
    normalisation are not part of this rule (the run's optimiser applies the update).
    """

    name = "sign_symmetry"
    description = "Sign symmetry: feedback through the signs of the forward weights"
    citation = (
        "Liao, Leibo & Poggio (2016), How important is weight symmetry in backpropagation?, "
        "AAAI 2016"
    )
    family = "feedback alignment"
    weight_transport = True
    defaults = {
        "magnitude": Hyperparameter(
            "unit",
            "B = sign(W) (uSF); fixed_random / batch_random: random magnitudes with concordant signs, "
            "fixed or redrawn every update (Liao, Leibo & Poggio 2016)",
            choices=MAGNITUDES,
        ),
        **feedback_init_options(
            "default: random magnitudes |M_l| with M_l ~ U(-s/sqrt(in), s/sqrt(in)), the forward layer's "
            "own nn.Linear bound (used by the random magnitudes only)",
            "s = 1: magnitudes on the scale of the forward weights (used by the random magnitudes only)",
        ),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the fixed magnitudes, or create the generator of the per-update ones."""
        super().bind(network, generator)
        self._magnitude_of: dict[str, str] = {}
        magnitude = self.config["magnitude"]
        if magnitude == "unit":
            return
        if magnitude == "batch_random":
            self.magnitude_generator = derived_generator(generator, network.device)  # drawn where they are used
        for index, layer in enumerate(self.feedback_layers(), start=1):
            name = f"magnitude_{index}"
            self.register_buffer(name, self._draw(layer, generator))
            self._magnitude_of[layer.layer_name] = name

    def _draw(self, layer: PlasticLayer, generator: torch.Generator, device: torch.device | None = None) -> Tensor:
        return draw_feedback(
            layer.out_features, layer.in_features, self.config["feedback_init"],
            float(self.config["feedback_scale"]), generator, default_fan_in=layer.in_features, device=device,
        ).abs()

    def feedback_matrix(self, layer: PlasticLayer) -> Tensor:
        """``sign(forward_matrix())`` of ``layer`` read at the time of the update, times ``|M|`` if random."""
        signs = torch.sign(layer.forward_matrix().detach())
        name = self._magnitude_of.get(layer.layer_name)
        return signs if name is None else signs * getattr(self, name)

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Redraw the magnitudes (``batch_random``), then backprop's local updates through ``B``."""
        if self.config["magnitude"] == "batch_random":
            for layer in self.feedback_layers():
                magnitudes = self._draw(layer, self.magnitude_generator, self.magnitude_generator.device)
                getattr(self, self._magnitude_of[layer.layer_name]).copy_(magnitudes)
        return super().compute_update(x, y, loss_fn)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register sign symmetry."""
    return [SignSymmetry]
