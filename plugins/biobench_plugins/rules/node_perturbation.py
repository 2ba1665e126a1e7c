"""Node perturbation (Werfel, Xie & Seung 2005): loss change under drive noise estimates the gradient."""

from __future__ import annotations

from biobench import (
    WERFEL_2005,
    Hyperparameter,
    LearningRule,
    LogUniform,
    NodePerturbationRule,
    hookimpl,
)


class NodePerturbation(NodePerturbationRule):
    """Node perturbation (Werfel, Xie & Seung 2005).

    Every plastic layer's synaptic drive gets noise ``xi_{l,n} ~ N(0, sigma^2 I)``
    (per example ``n``, through ``layer.drive_noise``). The change of each example's
    loss, correlated with the noise, estimates the gradient with respect to the
    drive, and the pre-synaptic activity of the clean pass turns it into a weight
    update:

        dL/dW_l ~= (1/B) sum_n ((l_n(xi) - l_n(0)) / sigma^2) xi_{l,n} pre_{l,n}^T
        dL/db_l ~= (1/B) sum_n ((l_n(xi) - l_n(0)) / sigma^2) xi_{l,n}

    with ``l_n`` the loss of example ``n`` and ``B`` the batch size (the task loss is
    the batch mean). All layers are perturbed at once; the noise comes from the
    rule's own generator, seeded from the run's.

    Spiking networks (``time``): the same noise is added to the drive at every time
    step, and ``pre`` is the time-averaged pre-synaptic activity; the estimate is then
    exact (to first order) when the drive's gradient is constant over the presentation.
    """

    name = "node_perturbation"
    description = "Node perturbation: loss change under noise in each unit's drive estimates the gradient"
    citation = WERFEL_2005
    family = "perturbation"
    requires = frozenset({"node_noise", "signals", "dense"})
    weight_transport = False
    global_error = True
    defaults = {
        "sigma": Hyperparameter(
            1e-2,
            "small-noise regime of Werfel et al. 2005 (loss change linear in the noise): about 1% "
            "of the unit drives' scale (~1), well above float32 resolution of the loss",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-3, 1e-1),
        ),
    }


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register node perturbation."""
    return [NodePerturbation]
