"""Back-propagation carried by spiking error neurons through the transposed forward weights.

Inspired by Shrestha, Fang, Wu & Qiu (ICONS 2019), but not their error-modulated
STDP (see the rule's docstring).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from biobench import (
    Hyperparameter,
    LearningRule,
    LossFn,
    Network,
    accumulate_grad,
    decay_per_step,
    exponential_trace,
    hookimpl,
)


def regular_spike_train(rate: float, steps: int, device: torch.device | None = None) -> Tensor:
    """A (steps,) train with evenly spaced spikes at ``rate`` per step: ``floor((t+1) r) - floor(t r)``."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a spike rate per step must be in [0, 1], got {rate}")
    counts = torch.floor(torch.arange(steps + 1, dtype=torch.float64, device=device) * rate)
    return (counts[1:] - counts[:-1]).to(torch.float32)


def signed_error_spikes(current: Tensor, threshold: float) -> Tensor:
    """Spikes of a pair of integrate-and-fire error neurons (positive and negative) for ``current``.

    ``current``: (time, ...). One signed integrator ``v[t] = v[t-1] + I[t]`` (``v[-1] = 0``);
    when ``v[t] >= threshold`` the positive error neuron spikes (+1) and ``v`` drops by
    ``threshold``; when ``v[t] <= -threshold`` the negative one spikes (-1) and ``v``
    rises by ``threshold``; at most one spike per step. Returns the (time, ...) train of
    ``e+ - e-`` in {-1, 0, +1}, whose sum approximates ``sum_t I[t] / threshold``.
    """
    if threshold <= 0:
        raise ValueError(f"error threshold must be positive, got {threshold}")
    potential = torch.zeros_like(current[0])
    spikes = []
    for t in range(current.shape[0]):
        potential = potential + current[t]
        spike = (potential >= threshold).to(current.dtype) - (potential <= -threshold).to(current.dtype)
        potential = potential - threshold * spike
        spikes.append(spike)
    return torch.stack(spikes)


def has_fired(spikes: Tensor) -> Tensor:
    """``1`` from the first spike of each neuron on, ``0`` before it, along time: (time, ...)."""
    return (torch.cumsum(spikes, dim=0) > 0).to(spikes.dtype)


class SpikingErrorBackprop(LearningRule):
    """Back-propagation carried by spikes, with weight transport (inspired by Shrestha et al. 2019).

    Citation of the inspiration: Shrestha, Fang, Wu & Qiu, "Approximating
    back-propagation for a biologically plausible local learning rule in spiking
    neural networks", ICONS 2019, doi:10.1145/3354265.3354275.

    Errors are carried by spikes of error neurons running alongside the forward
    network during the same presentation, and each synapse changes by the product
    of its post-synaptic error spikes and a trace of its pre-synaptic spikes. The
    hidden error neurons receive the output errors through the **transposed
    forward weights**: this is back-propagation with weight transport
    (``weight_transport = True``), carried by spikes.

    *Output error neurons.* The target of output neuron ``k`` is a regular spike
    train at ``target_rate`` for the label's neuron and silence for the others,
    ``s*_k[t]``. A pair of integrate-and-fire error neurons (positive, negative)
    integrates ``s*_k[t] - s_k[t]`` with threshold 1, so each error spike stands
    for one missing or one surplus output spike (:func:`signed_error_spikes`):

        e_L[t] = IF_1( s*[t] - s_L[t] )                         in {-1, 0, +1}

    *Hidden error neurons.* They receive the error spikes of the layer above
    through the transposed forward weights (weight transport, as in
    back-propagation) gated by the derivative of the forward neuron's rate
    function, approximated by its activity (1 once the neuron has fired in this
    presentation, 0 before: integrate-and-fire rates are a rectified-linear
    function of the input), and spike through the same signed integrate-and-fire
    pair with threshold ``theta_l``:

        e_l[t] = IF_theta_l( (e_{l+1}[t] W_{l+1}) * g_l[t] ),   g_l[t] = 1[sum_{t'<=t} s_l[t'] > 0]

    ``theta_l = hidden_error_threshold_scale * mean|W_{l+1}|`` at initialisation, so
    one output error spike through a synapse of average initial strength brings a
    hidden error neuron to threshold.

    *Local STDP-shaped update* (pre-synaptic trace ``x_j[t] = exp(-1/tau) x_j[t-1] + s_j[t]``):

        dW_l,ij = eta / B * sum_b sum_t e_l,i[t] x_l-1,j[t],    db_l,i = eta / B * sum_b sum_t e_l,i[t]

    A positive error spike potentiates the synapses whose pre-synaptic neuron
    fired shortly before (causal pairing), a negative one depresses them. Summed
    over the presentation this is back-propagation's ``delta x^T`` with
    spike-count rates and a squared-rate error. The update is written into
    ``.grad`` as ``-dW / eta`` and applied by Adam with ``lr``, as for the other
    rules of the suite (the paper applies it with a plain learning rate).

    **Not Shrestha et al.'s rule.** Only the ICONS 2019 abstract could be read; the
    first author's released algorithm (EMSTDP, ``zmeidd/EMSTDP``) differs in its
    core: it presents each example in two phases, injects the error spikes into
    the forward neurons during the second phase, and changes each synapse by the
    pre-synaptic activity of phase 1 times the change of the post-synaptic
    neuron's *own* firing between the phases (with non-leaky integrate-and-fire
    neurons reset to zero, count-based output errors with threshold 3, per-weight
    RMS-normalised steps and clipping). Here there is one phase, no injection, and
    the update multiplies the *error* spikes with pre-synaptic traces (a
    three-factor "error x pre-trace" rule); the neurons are the benchmark's LIF
    (beta 0.95, reset by subtraction), the input is independent Bernoulli per
    pixel, the target train, the activity gate as the derivative and the error
    thresholds are this implementation's choices, and Adam applies the update.
    The abstract counts the "coherent copy of weight matrices" among the
    requirements of backprop the paper sets out to avoid; whether the paper's own
    rule uses transposed or random feedback could not be checked. No published
    values (none could be read).
    """

    name = "spiking_error_backprop"
    description = (
        "Back-propagation carried by spiking error neurons through the transposed forward weights "
        "(weight transport), error-spike x pre-trace updates; inspired by Shrestha et al. 2019"
    )
    citation = (
        "Shrestha, Fang, Wu & Qiu (2019), Approximating back-propagation for a biologically "
        "plausible local learning rule in spiking neural networks, International Conference on "
        "Neuromorphic Systems (ICONS '19), ACM, doi:10.1145/3354265.3354275"
    )
    family = "other"
    requires = frozenset({"signals", "dense", "time"})
    weight_transport = True
    global_error = True
    defaults = {
        "target_rate": Hyperparameter(
            1.0, "the label's neuron should fire at every step (the maximal rate), the others never"
        ),
        "tau_trace": Hyperparameter(20.0, "STDP time constant, 20 ms at 1 ms per step (Bi & Poo 1998)"),
        "hidden_error_threshold_scale": Hyperparameter(
            1.0,
            "one output error spike through a synapse of average initial |W| reaches a hidden "
            "error neuron's threshold",
        ),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Fix each hidden layer's error-neuron threshold from the initial weights above it."""
        super().bind(network, generator)
        scale = float(self.config["hidden_error_threshold_scale"])
        thresholds = [scale * float(layer.weight.detach().abs().mean()) for layer in network.layers[1:]]
        if any(t <= 0 for t in thresholds):
            raise ValueError("hidden error thresholds must be positive (all-zero weights above a layer?)")
        self.register_buffer("hidden_error_thresholds", torch.tensor(thresholds, dtype=torch.float64))
        self._thresholds = thresholds  # the same values as numbers: read at every step without a device sync

    @torch.no_grad()
    def error_spikes(self, signals: list, y: Tensor) -> list[Tensor]:
        """The signed error spike trains ``e_l`` (time, batch, out_l) of every layer, output first computed."""
        layers = self.network.layers
        output = signals[-1].post
        steps = output.shape[0]
        target = nn.functional.one_hot(y, layers[-1].out_features).to(output.dtype)
        train = regular_spike_train(float(self.config["target_rate"]), steps, output.device).to(output.dtype)
        target_spikes = train[:, None, None] * target[None]
        errors: list[Tensor] = [signed_error_spikes(target_spikes - output, 1.0)]
        for index in range(len(layers) - 1, 0, -1):
            gate = has_fired(signals[index - 1].post)
            current = (errors[0] @ layers[index].weight) * gate
            threshold = self._thresholds[index - 1]
            errors.insert(0, signed_error_spikes(current, threshold))
        return errors

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """One presentation: forward spikes, error spikes, then each layer's local update."""
        with torch.no_grad():
            logits, signals = self.network.forward_with_signals(x)
            loss = loss_fn(logits, y)
            for layer, signal in zip(self.network.layers, signals, strict=True):
                if signal is None or not signal.time_major:
                    raise RuntimeError(f"layer {layer.layer_name!r} recorded no time-major spike trains")
            errors = self.error_spikes(signals, y)
            decay = decay_per_step(float(self.config["tau_trace"]))
            batch = len(y)
            for layer, signal, error in zip(self.network.layers, signals, errors, strict=True):
                trace = exponential_trace(signal.pre, decay)
                rows = error.shape[0] * error.shape[1]
                change = error.reshape(rows, -1).t() @ trace.reshape(rows, -1)
                accumulate_grad(layer.weight, -change / batch)
                if layer.bias is not None:
                    accumulate_grad(layer.bias, -error.sum((0, 1)) / batch)
        return loss.detach(), logits.detach()



@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register back-propagation carried by spiking error neurons."""
    return [SpikingErrorBackprop]
