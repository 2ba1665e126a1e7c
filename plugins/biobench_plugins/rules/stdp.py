"""Naive baseline: pair-based spike-timing-dependent plasticity (STDP) with exponential traces, teacher-supervised.

Plain STDP in a feed-forward LIF network, with no competition, normalisation or
homeostasis: expected to stay near chance (see the rule's docstring). The
competitive STDP network of Diehl & Cook (2015) is the rule ``stdp_competitive``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from biobench import (
    Hyperparameter,
    LearningRule,
    LossFn,
    accumulate_grad,
    decay_per_step,
    exponential_trace,
    hookimpl,
)


def pair_stdp(
    pre: Tensor, post: Tensor, a_plus: float, a_minus: float, decay_plus: float, decay_minus: float
) -> Tensor:
    """The pair-based STDP weight change ``(out, in)`` summed over time and batch.

    ``pre``: (time, batch, in) and ``post``: (time, batch, out) spike trains. With
    ``x`` the pre-synaptic trace (decay ``decay_plus``) and ``y`` the post-synaptic
    trace (decay ``decay_minus``), both including the current step:

        dW_ij = sum_b sum_t [ a_plus * post_i[t] x_j[t] - a_minus * (y_i[t] - post_i[t]) pre_j[t] ]

    i.e. every pair with ``d = t_post - t_pre >= 0`` adds ``a_plus * decay_plus ** d``
    (a pre spike in the same step as a post spike counts as causal: the input drives
    the membrane in that step) and every pair with ``d < 0`` adds
    ``-a_minus * decay_minus ** |d|``.
    """
    x = exponential_trace(pre, decay_plus)
    y_before = exponential_trace(post, decay_minus) - post
    steps_batch = pre.shape[0] * pre.shape[1]
    potentiation = post.reshape(steps_batch, -1).t() @ x.reshape(steps_batch, -1)
    depression = y_before.reshape(steps_batch, -1).t() @ pre.reshape(steps_batch, -1)
    return a_plus * potentiation - a_minus * depression


class STDP(LearningRule):
    """Naive baseline: pair-based STDP (Bi & Poo 1998; Song, Miller & Abbott 2000) with traces (Morrison et al. 2008).

    A baseline that shows what plain STDP does without the mechanisms that make
    STDP networks learn (lateral inhibition, adaptive thresholds, weight
    normalisation, as in Diehl & Cook 2015: rule ``stdp_competitive``). It is
    expected to fail, and does: on ``snn`` it stays at chance, with the hidden
    weights running to their bound (README, "STDP stays at chance, and why").

    Every synapse changes with the relative timing of its pre- and post-synaptic
    spikes, exponential windows of time constants ``tau_plus`` and ``tau_minus``
    (in time steps; one step stands for 1 ms):

        dW_ij = lr / B * sum_b sum_t [ A+ s_i[t] x_j[t] - A- (y_i[t] - s_i[t]) s_j[t] ]
        x_j[t] = exp(-1/tau_plus) x_j[t-1] + s_j[t],  y_i[t] = exp(-1/tau_minus) y_i[t-1] + s_i[t]

    (see :func:`pair_stdp`). ``A-/A+ = 1.05`` as in Song et al. (2000), so
    uncorrelated firing depresses slightly more than it potentiates.

    **Supervision** (teacher signal at the output, as in supervised STDP,
    Legenstein, Naeger & Maass 2005): while the learning signals are recorded,
    the output layer receives a teacher current through ``drive_noise`` at every
    step, ``+teacher_current`` into the neuron of the target class and
    ``-teacher_current`` into the others. With the default of one threshold per
    step this clamps the output: the target neuron fires at (nearly) every step
    and the others stay silent, so the output synapses change by STDP between the
    hidden spikes and the teacher-imposed spikes. Hidden layers get no teacher:
    their STDP is unsupervised. No error is propagated. A second pass without the
    teacher gives the network's own prediction (the returned logits and loss).

    **Update.** Weights only (biases are not plastic), applied by plain SGD,
    ``W += dW``, written into ``.grad`` as ``-dW / lr`` (descent convention), so the
    optimiser step is exactly the plasticity rule. After each step the weights are
    clipped to ``[-w_max, w_max]`` with ``w_max = weight_bound / sqrt(fan_in)``, the
    hard bounds of Song et al. (2000) for signed weights.
    """

    name = "stdp"
    description = (
        "Naive baseline: pair-based STDP, teacher current at the output, no competition or "
        "normalisation: expected to stay near chance"
    )
    citation = (
        "Bi & Poo (1998), Synaptic modifications in cultured hippocampal neurons, J. Neurosci. 18(24); "
        "Song, Miller & Abbott (2000), Competitive Hebbian learning through spike-timing-dependent "
        "synaptic plasticity, Nature Neuroscience 3(9); Morrison, Diesmann & Gerstner (2008), "
        "Phenomenological models of synaptic plasticity based on spike timing, Biol. Cybern. 98; "
        "teacher forcing as in Legenstein, Naeger & Maass (2005), What can a neuron learn with "
        "spike-timing-dependent plasticity?, Neural Computation 17(11)"
    )
    family = "spike timing"
    requires = frozenset({"signals", "dense", "time", "node_noise"})
    weight_transport = False
    global_error = False
    optimizer = {
        "name": Hyperparameter("sgd", "plain SGD: the step is exactly the STDP change scaled by lr"),
        "lr": Hyperparameter(
            1e-3,
            "SGD step per unit STDP change: at initialisation an input synapse changes by about "
            "0.17 (pair weight) per example, so a step moves it by about 0.5% of its initial bound",
            minimum=0.0, exclusive_minimum=True,
        ),
    }
    defaults = {
        "a_plus": Hyperparameter(1.0, "potentiation amplitude; the overall scale is carried by lr"),
        "a_minus": Hyperparameter(1.05, "A-/A+ = 1.05, Song, Miller & Abbott (2000)"),
        "tau_plus": Hyperparameter(20.0, "20 ms at 1 ms per step (Bi & Poo 1998; Song et al. 2000)"),
        "tau_minus": Hyperparameter(20.0, "20 ms at 1 ms per step (Bi & Poo 1998; Song et al. 2000)"),
        "teacher_current": Hyperparameter(
            1.0,
            "one firing threshold per step: clamps the target neuron to fire at every step and "
            "silences the others (supervision by clamping the output)",
        ),
        "weight_bound": Hyperparameter(
            3.0, "hard bound |w| <= 3/sqrt(fan_in), three times the initial bound (Song et al. 2000 use hard bounds)"
        ),
    }

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Prediction pass, then a teacher-driven pass whose spike trains give every layer's STDP change."""
        network = self.network
        with torch.no_grad():
            logits = network(x)
            loss = loss_fn(logits, y)
            output = network.layers[-1]
            saved = output.drive_noise
            current = float(self.config["teacher_current"])
            target = nn.functional.one_hot(y, output.out_features).to(logits.dtype)
            output.drive_noise = current * (2.0 * target - 1.0)
            try:
                _, signals = network.forward_with_signals(x)
            finally:
                output.drive_noise = saved
            decay_plus = decay_per_step(float(self.config["tau_plus"]))
            decay_minus = decay_per_step(float(self.config["tau_minus"]))
            for layer, signal in zip(network.layers, signals, strict=True):
                if signal is None or not signal.time_major:
                    raise RuntimeError(f"layer {layer.layer_name!r} recorded no time-major spike trains")
                change = pair_stdp(
                    signal.pre,
                    signal.post,
                    float(self.config["a_plus"]),
                    float(self.config["a_minus"]),
                    decay_plus,
                    decay_minus,
                )
                accumulate_grad(layer.weight, -change / len(y))
        return loss.detach(), logits.detach()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The plastic layers' weights (biases are not plastic under STDP)."""
        return [layer.weight for layer in self.network.layers]

    def after_step(self) -> None:
        """Clip every weight to its hard bound ``weight_bound / sqrt(fan_in)``."""
        with torch.no_grad():
            for layer in self.network.layers:
                bound = float(self.config["weight_bound"]) / math.sqrt(layer.in_features)
                layer.weight.clamp_(-bound, bound)


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register pair-based STDP."""
    return [STDP]
