"""Node perturbation (Werfel, Xie & Seung 2005) of KAN node sums, mapped onto spline coefficients."""

from __future__ import annotations

from torch import Tensor

from biobench import (
    WERFEL_2005,
    Hyperparameter,
    LayerSignals,
    LearningRule,
    LogUniform,
    NodePerturbationRule,
    PlasticLayer,
    accumulate_grad,
    hookimpl,
)


class KANNodePerturbation(NodePerturbationRule):
    """Node perturbation (Werfel, Xie & Seung 2005) on the node sums of a KAN.

    Every KAN layer's node sums ``u_{l,n}`` get noise ``xi_{l,n} ~ N(0, sigma^2 I)``
    (per example ``n``, through ``layer.drive_noise``), all layers at once. Each
    example's loss change estimates the gradient with respect to its node sums,

        g_{l,n} = ((l_n(xi) - l_n(0)) / sigma^2) xi_{l,n},

    and the local derivatives of the node sums, taken on the clean pass, carry it
    onto every parameter theta of the layer (the mapping of
    :mod:`biobench_plugins.kan`, with ``B`` the batch size):

        dL/dcoef_{iok}      ~= (1/B) sum_n g_{n,o} scale_sp_{io} B_k(x_{n,i})
        dL/dscale_base_{io} ~= (1/B) sum_n g_{n,o} b(x_{n,i})
        dL/dscale_sp_{io}   ~= (1/B) sum_n g_{n,o} sum_k coef_{iok} B_k(x_{n,i})

    For a dense layer the same estimate gives ``(1/B) sum_n g_n pre_n^T``, the update
    of the generic ``node_perturbation`` rule, whose step size and per-example losses
    this rule shares; ``sigma`` is scaled to a KAN's smaller node sums. The noise
    comes from the rule's own generator, seeded from the run's.
    """

    name = "kan_node_perturbation"
    description = "Node perturbation of KAN node sums, mapped onto spline coefficients by the basis activations"
    citation = WERFEL_2005
    family = "perturbation"
    requires = frozenset({"node_noise", "signals", "kan_splines"})
    weight_transport = False
    global_error = True
    defaults = {
        "sigma": Hyperparameter(
            1e-3,
            "small-noise regime of Werfel et al. 2005 (loss change linear in the noise): about 1% "
            "of a KAN's hidden node sums at initialisation (std 0.14 on MNIST; output logits "
            "std 0.04), well above float32 resolution of the loss",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-4, 1e-2),
        ),
    }

    def check_signal(self, layer: PlasticLayer, signal: LayerSignals | None) -> None:
        """Raise unless ``layer`` recorded its spline basis activations."""
        if signal is None or "basis" not in signal.extras:
            raise TypeError(f"layer {layer.layer_name!r} recorded no spline basis activations")

    def apply_drive_gradient(
        self, layer: PlasticLayer, signal: LayerSignals, drive_gradient: Tensor, batch: int
    ) -> None:
        """Carry the node-sum gradient onto the coefficients and scales through their local derivatives."""
        for name, value in layer.node_factor_update(drive_gradient / batch, signal).items():
            accumulate_grad(getattr(layer, name), value)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register node perturbation for KANs."""
    return [KANNodePerturbation]
