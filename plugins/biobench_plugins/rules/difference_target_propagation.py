"""Difference target propagation (Lee et al. 2015): layer targets through learned inverses."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from biobench import (
    DifferenceTargetPropagationRule,
    Hyperparameter,
    LayerSignals,
    LearningRule,
    LogUniform,
    hookimpl,
)

#: Where the defaults come from: the official code of Meulemans et al. 2020, MNIST configuration of DTP.
MEULEMANS_DTP_CONFIG = (
    "Meulemans et al. 2020 official code (github.com/meulemansalex/"
    "theoretical_framework_for_target_propagation @ b6ee350), final_configs/mnist_DTP.py"
)


class DifferenceTargetPropagation(DifferenceTargetPropagationRule):
    """Difference target propagation (Lee, Zhang, Fischer & Bengio 2015).

    Targets and forward updates as in :class:`biobench.DifferenceTargetPropagationRule`:
    ``t_L = h_L - beta dL/dh_L``, ``t_{l-1} = h_{l-1} + g_l(t_l) - g_l(h_l)`` with
    ``g_l(h) = tanh(h Q_l^T + c_l)``, and every layer descends ``||h_l - t_l||^2``:
    ``W_l.grad = (1/B) sum_b 2 (f'(u_l) * (h_l - t_l))^T h_{l-1}``. Each feedback mapping
    learns to invert its layer from a corrupted copy of the layer's input
    (``h~ = h_{l-1} + eps``, ``eps ~ N(0, sigma^2)``):

        L_rec,l = s * mean_{b, i} ( g_l(f_l(h~)) - h~ )^2        (gradient w.r.t. Q_l, c_l only)

    with ``s = 1 / max(sigma, 0.02)^2`` and the mean over batch and units (Meulemans et
    al. 2020's code; Lee et al.'s code sums over units and has ``s = 1``, which only
    rescales the feedback step size). Forward and feedback parameters are updated on
    the same mini-batch in the same step (the "parallel" training of Meulemans et al.).

    This is DTP as implemented by Meulemans, Carzaniga, Suykens, Sacramento & Grewe
    (2020, official code) and, for the output target, the weight-transport-free form
    of Bartunov et al. (2018, "simplified DTP"). Departures from Lee et al. 2015 (whose
    code, github.com/donghyunlee/dtp ``conti_dtp.py``, was read): their top hidden
    layer's target is a gradient step computed through the output weights (weight
    transport at one layer) and their output layer learns by the loss gradient; here
    the output layer gets the target ``t_L`` and the penultimate target comes through
    the learned inverse ``g_L``, so no weight is transported. Lee et al. alternate one
    epoch of feedback training with one epoch of forward training, with RMSprop; here
    both are trained on every batch with the run's optimiser (defaults: Meulemans et
    al.'s Adam settings). Adam's epsilon stays at PyTorch's 1e-8 for both groups
    (Meulemans et al.: 1.0e-8 forward, 7.5e-6 feedback). Their MNIST network is
    784-5x256-10 tanh in double precision with Xavier-normal forward weights; run it as
    ``--arch-option hidden=[256,256,256,256,256] --arch-option activation='"tanh"'``
    (the MLP keeps PyTorch's initialisation and float32). DTP needs depth: with the
    MLP's default single hidden layer only the first layer's target comes through an
    inverse (``hidden=[256, 256]`` gives two).

    No published number is declared: the test errors of Lee et al. 2015 (Table 1),
    Bartunov et al. 2018 and Meulemans et al. 2020 (Tables 1, S6) could not be read
    here, and the official repositories contain no results. The inverses ``Q_l`` have
    shape (in, out) and approximate an inverse of ``W_l``, not its transpose, so the
    rule reports no ``feedback_weights()``; the harness's gradient bias and update
    angle compare its updates with backprop's. Cost: one forward pass, the target
    sweep through the inverses and one noisy pass of each layer and its inverse: a
    ``ci`` epoch took 1.4 times backprop's on the default MLP and 2.0 times on
    784-256-256-10 (measured back to back on a shared 2-core machine).
    Architectures: the layers must form a
    chain of static rate units with dense matrices (``rate``, ``dense``, ``signals``):
    the MLPs. KANs (no dense matrix or static unit derivative) and spiking networks
    (targets and inverses of spike trains are not defined by these papers) are
    unsupported.
    """

    name = "difference_target_propagation"
    description = "Difference target propagation: layer targets through learned inverses (DTP reconstruction loss)"
    citation = (
        "Lee, Zhang, Fischer & Bengio (2015), Difference target propagation, ECML-PKDD 2015, "
        "LNCS 9284, pp. 498-515; as implemented by Meulemans, Carzaniga, Suykens, Sacramento & "
        "Grewe (2020), A theoretical framework for target propagation, NeurIPS 33"
    )
    family = "target propagation"
    optimizer = {
        "name": Hyperparameter("adam", f"{MEULEMANS_DTP_CONFIG}: optimizer Adam"),
        "lr": Hyperparameter(
            6.185037324617764e-05 / 0.21951187497378802,
            f"{MEULEMANS_DTP_CONFIG}: lr 6.185e-5 divided by target_stepsize (normalize_lr, main.py), 2.818e-4",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-5, 1e-2),
        ),
        "beta1": Hyperparameter(0.9, f"{MEULEMANS_DTP_CONFIG}: beta1", minimum=0.0, maximum=1.0),
        "beta2": Hyperparameter(0.999, f"{MEULEMANS_DTP_CONFIG}: beta2", minimum=0.0, maximum=1.0),
    }
    defaults = {
        "target_stepsize": Hyperparameter(
            0.21951187497378802, f"{MEULEMANS_DTP_CONFIG}: target_stepsize (beta)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-2, 1.0),
        ),
        "sigma": Hyperparameter(
            0.08372453893037193, f"{MEULEMANS_DTP_CONFIG}: sigma (reconstruction noise)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-2, 0.5),
        ),
        "feedback_lr": Hyperparameter(
            0.0019584756448113774, f"{MEULEMANS_DTP_CONFIG}: lr_fb",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-5, 1e-2),
        ),
        "feedback_weight_decay": Hyperparameter(0.0, f"{MEULEMANS_DTP_CONFIG}: none", minimum=0.0),
        "feedback_beta1": Hyperparameter(0.9, f"{MEULEMANS_DTP_CONFIG}: beta1_fb", minimum=0.0, maximum=1.0),
        "feedback_beta2": Hyperparameter(0.999, f"{MEULEMANS_DTP_CONFIG}: beta2_fb", minimum=0.0, maximum=1.0),
        "feedback_activation": Hyperparameter(
            "tanh", f"{MEULEMANS_DTP_CONFIG}: fb_activation (Lee et al. 2015's code: tanh too)",
            choices=("tanh", "linear"),
        ),
    }

    def feedback_loss(self, index: int, signals: list[LayerSignals], noise: Tensor) -> Tensor:
        """``s * mean((g_l(f_l(h~)) - h~)^2)`` with ``h~ = h_{l-1} + noise`` and ``f_l(h~)`` held fixed."""
        corrupted = signals[index].pre + noise
        with torch.no_grad():
            response = self.network.layers[index](corrupted)
        return self.reconstruction_scale() * F.mse_loss(self.inverse(index, response), corrupted)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register difference target propagation."""
    return [DifferenceTargetPropagation]
