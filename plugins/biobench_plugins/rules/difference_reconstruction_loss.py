"""DTP with the difference reconstruction loss (DRL; Meulemans et al. 2020)."""

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

#: Where the defaults come from: the official code of Meulemans et al. 2020, MNIST configuration of DTPDRL.
MEULEMANS_DRL_CONFIG = (
    "Meulemans et al. 2020 official code (github.com/meulemansalex/"
    "theoretical_framework_for_target_propagation @ b6ee350), final_configs/mnist_DTPDRL.py"
)


class DifferenceReconstructionLoss(DifferenceTargetPropagationRule):
    """Difference target propagation trained with the difference reconstruction loss (Meulemans et al. 2020).

    Targets and forward updates are DTP's (:class:`biobench.DifferenceTargetPropagationRule`):
    ``t_L = h_L - beta dL/dh_L``, ``t_{l-1} = h_{l-1} + g_l(t_l) - g_l(h_l)``,
    ``W_l.grad = (1/B) sum_b 2 (f'(u_l) * (h_l - t_l))^T h_{l-1}``. Only the feedback
    loss differs. For layer ``l``'s feedback mapping, corrupt its input
    (``h~ = h_{l-1} + eps``, ``eps ~ N(0, sigma^2)``), propagate it forward through layers
    ``l, ..., L`` to the output, bring that back down with the current feedback mappings
    and difference corrections, and penalise the distance to the corrupted start:

        r_L = f_L(...f_l(h~)),   r_{k-1} = h_{k-1} + g_k(r_k) - g_k(h_k)   (k = L, ..., l)
        L_DRL,l = (1 / sigma^2) * mean_{b, i} (r_{l-1} - h~)^2             (gradient w.r.t. Q_l, c_l only)

    (code: ``DTPDRLNetwork.compute_feedback_gradients``, ``DTPDRLLayer``; DTPDRL in the
    paper). The loss asks the whole difference-corrected feedback path above ``l``, not
    ``g_l`` alone, to invert the forward path, which makes the propagated targets
    Gauss-Newton-like (Meulemans et al. 2020). Defaults are the official MNIST
    configuration; forward and feedback parameters learn on every batch in one step.

    Departures from the official configuration: its 6 feedback-only epochs before
    training (``epochs_fb``) and 1 feedback-only epoch after every epoch
    (``extra_fb_epochs``) are not run (a rule trains only in the harness's updates, one
    feedback step per forward step); Adam's epsilon stays at 1e-8 for both groups
    (official: 1.0e-8 forward, 5.1e-8 feedback); their MNIST network is 784-5x256-10
    tanh in double precision with Xavier-normal forward weights (run
    ``--arch-option hidden=[256,256,256,256,256] --arch-option activation='"tanh"'``; the
    MLP keeps PyTorch's initialisation and float32). The paper's general DRL may hold
    further terms that the official DTPDRL configuration does not use (not verified:
    the paper's body could not be read). No published number is declared: the
    paper's Tables 1 and S6 could not be read and the repository holds no results.
    Cost: the feedback loss of layer ``l`` runs layers ``l..L`` forward and the feedback
    path back down, so an update costs about ``L/2`` extra forward passes, growing with
    depth: a ``ci`` epoch took 1.6 times backprop's on the default MLP and 2.9 times on
    784-256-256-10 (measured back to back on a shared 2-core machine); deeper networks
    cost relatively more (the 5-hidden-layer network of the paper was not timed). Supported
    architectures are DTP's (chains of static rate units with dense matrices: the
    MLPs; not KANs or spiking networks, for the reasons given there).
    """

    name = "difference_reconstruction_loss"
    description = "DTP whose inverses learn by the difference reconstruction loss (DRL, Meulemans et al. 2020)"
    citation = (
        "Meulemans, Carzaniga, Suykens, Sacramento & Grewe (2020), A theoretical framework for "
        "target propagation, NeurIPS 33; difference target propagation: Lee, Zhang, Fischer & "
        "Bengio (2015), ECML-PKDD 2015"
    )
    family = "target propagation"
    optimizer = {
        "name": Hyperparameter("adam", f"{MEULEMANS_DRL_CONFIG}: optimizer Adam"),
        "lr": Hyperparameter(
            2.968902530985572e-05 / 0.06858850589618244,
            f"{MEULEMANS_DRL_CONFIG}: lr 2.969e-5 divided by target_stepsize (normalize_lr, main.py), 4.329e-4",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-5, 1e-2),
        ),
        "beta1": Hyperparameter(0.9, f"{MEULEMANS_DRL_CONFIG}: beta1", minimum=0.0, maximum=1.0),
        "beta2": Hyperparameter(0.99, f"{MEULEMANS_DRL_CONFIG}: beta2", minimum=0.0, maximum=1.0),
    }
    defaults = {
        "target_stepsize": Hyperparameter(
            0.06858850589618244, f"{MEULEMANS_DRL_CONFIG}: target_stepsize (beta)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-2, 1.0),
        ),
        "sigma": Hyperparameter(
            0.056879454462500055, f"{MEULEMANS_DRL_CONFIG}: sigma (reconstruction noise)",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-2, 0.5),
        ),
        "feedback_lr": Hyperparameter(
            2.0123315498373473e-05, f"{MEULEMANS_DRL_CONFIG}: lr_fb",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-6, 1e-2),
        ),
        "feedback_weight_decay": Hyperparameter(
            5.384963778780523e-06, f"{MEULEMANS_DRL_CONFIG}: feedback_wd (Adam's L2)", minimum=0.0,
        ),
        "feedback_beta1": Hyperparameter(0.99, f"{MEULEMANS_DRL_CONFIG}: beta1_fb", minimum=0.0, maximum=1.0),
        "feedback_beta2": Hyperparameter(0.999, f"{MEULEMANS_DRL_CONFIG}: beta2_fb", minimum=0.0, maximum=1.0),
        "feedback_activation": Hyperparameter(
            "tanh", f"{MEULEMANS_DRL_CONFIG}: fb_activation", choices=("tanh", "linear"),
        ),
    }

    def feedback_loss(self, index: int, signals: list[LayerSignals], noise: Tensor) -> Tensor:
        """``(1/sigma^2) mean((r_{l-1} - h~)^2)``: ``h~`` up to the output and back down the feedback path."""
        layers = self.network.layers
        corrupted = signals[index].pre + noise
        with torch.no_grad():
            reconstruction = corrupted
            for layer in layers[index:]:
                reconstruction = layer(reconstruction)
            for upper in range(len(layers) - 1, index, -1):
                reconstruction = self.difference_step(upper, reconstruction, signals)
        reconstruction = self.difference_step(index, reconstruction, signals)
        sigma = float(self.config["sigma"])
        return F.mse_loss(reconstruction, corrupted) / sigma**2


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register DTP with the difference reconstruction loss."""
    return [DifferenceReconstructionLoss]
