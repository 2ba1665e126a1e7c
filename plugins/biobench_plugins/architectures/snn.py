"""Spiking network: 784 -> hidden -> 10 leaky integrate-and-fire neurons built with snntorch.

Inputs are rate coded: pixel intensity ``p`` in [0, 1] becomes a Bernoulli spike
train, a spike with probability ``p`` at each of ``num_steps`` time steps. Each of
the two synapse layers is a :class:`biobench.PlasticLinear` (no activation) whose
synaptic current drives a population of snntorch ``Leaky`` neurons:

    I_l[t] = W_l s_{l-1}[t] + b_l (+ drive_noise)
    U_l[t] = beta U_l[t-1] + I_l[t] - theta S_l[t-1]        (reset by subtraction)
    S_l[t] = H(U_l[t] - theta)

with ``U_l[0] = 0`` and ``s_0`` the input spikes. The spike non-linearity ``H`` has
the surrogate derivative named in the config (``surrogate``, ``surrogate_slope``),
through which autograd runs backprop through time (BPTT).

**Timed input** (capability ``timed_input``). A task whose input comes in time bins
(``Task.input_steps`` = ``T`` > 1, e.g. N-MNIST's binned events) gives a flattened
``(batch, T * F)`` input, bin ``t`` at ``x[:, t*F:(t+1)*F]``. The harness sets
``architecture.input_steps = T`` before ``build``: the first layer then has ``F``
inputs, the presentation lasts ``T`` steps (``num_steps`` applies to rate-coded static
inputs only) and bin ``t`` is the input spike vector of step ``t``, as given: no
encoding, no randomness, and an input gradient (FGSM) flows to the bins directly.

**Readout.** The logits are the output neurons' spike counts over the presentation,
``logits_k = sum_t S_2,k[t]``, so the prediction is the neuron that fired most
(ties go to the lowest index, as ``argmax`` does). Spike counts keep the readout a
spiking quantity for the local rules that compare output spikes with a target.

**Deterministic encoding.** The Bernoulli spikes of a batch are drawn from a
generator seeded by ``(encoding seed, CRC-32 of the batch's bytes)``; the encoding
seed is drawn from the run's generator at ``build``. On an accelerator the same
idea runs on the device without copying the batch to the host: the uniform numbers
are a counter-based hash of ``(encoding seed, a hash of the batch's bits, position)``
(:func:`device_uniform`), so the spikes there differ from the CPU's but keep every
property below. The same batch therefore
always gets the same spike trains within a run, so a rule's update and the
reference gradient measured on a batch see identical input spikes, and two
forward passes of a perturbation rule differ only by the perturbation. Different
batches (and a reshuffled example in a different batch) get different spikes.
For an input that requires a gradient (FGSM), the spike train is
``S + p - stop_gradient(p)``: the value is the spike train and ``dS/dp = 1``
(straight-through estimator of the Bernoulli sampling).

**Layer interface** (capabilities ``time`` and ``stepping``). A plastic layer called with a
``(time, batch, in)`` spike train simulates the whole presentation from rest and
returns ``(time, batch, out)`` spikes; called with a ``(batch, in)`` tensor it
advances its own neuron state by one time step (``reset_state()`` returns it to
rest) so a rule can simulate a layer alone. ``feedback`` replaces the input
gradient of every time step: it receives ``g_out`` of shape ``(time, batch, out)``
and returns ``(time, batch, in)``, or ``(batch, in)`` for a per-example gradient
that then applies at every step (as a rule written for rate networks returns
it); ``drive_noise`` of shape ``(batch, out)`` (or
``(time, batch, out)``) is added to the synaptic current at every step. While
recording, each time step is recorded separately, so ``LayerSignals`` stacks time
first: ``pre`` (input spikes), ``drive`` (synaptic current), ``post`` (output
spikes) and ``membrane`` (``U[t]``; the reset of a spike at ``t`` is applied at
``t + 1``), each ``(time, batch, features)``. Local rules compute their spike traces from these.

**Budget.** The ``ci`` and ``smoke`` profiles use 10 time steps and 128 hidden
neurons, and ``ci`` trains 1 epoch on the first 20,000 training images
(``run_overrides``, stored in every record); ``full`` uses the defaults.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import snntorch as snn
import torch
from snntorch import surrogate
from torch import Tensor, nn

from biobench import (
    Architecture,
    FeedbackFn,
    Hyperparameter,
    Network,
    PlasticLinear,
    hookimpl,
    on_accelerator,
    reroute_input_gradient,
)

#: Surrogate derivatives of the spike non-linearity, by config name (snntorch.surrogate).
SURROGATES: dict[str, Callable[[float], Callable[[Tensor], Tensor]]] = {
    "fast_sigmoid": lambda slope: surrogate.fast_sigmoid(slope=slope),
    "atan": lambda slope: surrogate.atan(alpha=slope),
    "sigmoid": lambda slope: surrogate.sigmoid(slope=slope),
}

_SEED_MODULUS = 2**63 - 1

#: Capability: each plastic layer can be simulated on its own, one time step per call
#: (declared by ``biobench_plugins.capabilities.stepping``).
STEPPING = "stepping"


def rate_encode(x: Tensor, num_steps: int, seed: int) -> Tensor:
    """Bernoulli spike trains ``(num_steps, batch, features)`` with spike probability ``x``.

    The generator is seeded by ``seed`` and the CRC-32 of ``x``'s bytes, so the same
    input always gets the same spikes. If ``x`` requires a gradient, the spikes pass
    it straight through (``d spike / d x = 1``). On an accelerator the uniform numbers
    come from :func:`device_uniform` instead, computed where ``x`` lives.
    """
    if on_accelerator(x.device):
        values = x.detach().to(torch.float32)
        uniform = device_uniform(values, num_steps, seed)
        spikes = (uniform < values.clamp(0.0, 1.0)).to(dtype=x.dtype)
    else:
        values = x.detach().to("cpu", torch.float32).contiguous()
        checksum = zlib.crc32(values.numpy().tobytes())
        generator = torch.Generator().manual_seed((seed * 4_294_967_311 + checksum) % _SEED_MODULUS)
        uniform = torch.rand((num_steps, *values.shape), generator=generator, dtype=values.dtype)
        spikes = (uniform < values.clamp(0.0, 1.0)).to(device=x.device, dtype=x.dtype)
    if x.requires_grad:
        spikes = spikes + (x - x.detach())
    return spikes


_LOW16, _LOW32 = 0xFFFF, 0xFFFFFFFF


def _mul32(x: Tensor, constant: int) -> Tensor:
    """``x * constant mod 2**32`` for int64 ``x`` in [0, 2**32), in 16-bit halves (no int64 overflow)."""
    high = (((x >> 16) * constant) & _LOW16) << 16
    return (high + (x & _LOW16) * constant) & _LOW32


def hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixer (Wellons' lowbias32) on int64 tensors holding values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def device_uniform(values: Tensor, num_steps: int, seed: int) -> Tensor:
    """Uniform numbers in [0, 1) of shape ``(num_steps, *values.shape)``, a function of ``values``' bits, on their device.

    ``key = hash32(sum_j hash32(bits_j xor hash32(j)) mod 2**32 xor seed bits)``: the
    batch's content, order included, and the encoding seed; element ``i`` of the result
    is ``hash32(hash32(i xor key) + key) / 2**32`` to 24 bits (exact in float32).
    Integer arithmetic only, the same on every device; nothing is read back to the host.
    """
    flat = values.contiguous().view(torch.int32).reshape(-1).to(torch.int64) & _LOW32
    position = torch.arange(flat.numel(), device=values.device, dtype=torch.int64)
    content = hash32(flat ^ hash32(position & _LOW32)).sum() & _LOW32
    seed_bits = hash32(torch.tensor(seed & _LOW32, device=values.device)) ^ ((seed >> 32) & _LOW32)
    key = hash32(content ^ hash32(seed_bits & _LOW32))
    steps = []
    for t in range(num_steps):  # one step at a time: int64 temporaries of one step's size
        index = position + t * flat.numel()
        mixed = hash32(((hash32((index & _LOW32) ^ key)) + key) & _LOW32)
        steps.append((mixed >> 8).to(torch.float32) * (1.0 / (1 << 24)))
    return torch.stack(steps).reshape(num_steps, *values.shape)


class LeakyLinear(PlasticLinear):
    """Dense synapses (a ``PlasticLinear`` without activation) driving snntorch ``Leaky`` neurons.

    See the module docstring for the sequence and single-step call conventions.
    """

    def __init__(
        self,
        name: str,
        in_features: int,
        out_features: int,
        neuron: snn.Leaky,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(name, in_features, out_features, activation=None, generator=generator)
        self.neuron = neuron
        self.state: Tensor | None = None

    def reset_state(self) -> None:
        """Return the neurons to rest (membrane potential 0) before single-step calls."""
        self.state = None

    def _feedback_for(self, x: Tensor) -> FeedbackFn | None:
        """``self.feedback``, with a per-example result ``(batch, in)`` applied at every time step."""
        feedback = self.feedback
        if feedback is None or x.dim() != 3:
            return feedback
        shape = x.shape

        def every_step(g_out: Tensor) -> Tensor:
            g_in = feedback(g_out)
            return g_in.expand(shape) if g_in.dim() == 2 else g_in

        return every_step

    def _step(self, pre: Tensor, drive: Tensor, membrane: Tensor | None) -> tuple[Tensor, Tensor]:
        if membrane is None:
            membrane = torch.zeros_like(drive)
        spikes, membrane = self.neuron(drive, membrane)
        if self._recording:
            self._record(pre, drive, spikes, membrane)
        return spikes, membrane

    def forward(self, x: Tensor) -> Tensor:
        """Spikes for a ``(time, batch, in)`` train from rest, or one step for ``(batch, in)``."""
        if x.dim() not in (2, 3):
            raise ValueError(f"{self.layer_name}: expected (time, batch, in) or (batch, in), got {tuple(x.shape)}")
        if x.dim() == 2 and not x.requires_grad and not on_accelerator(x.device) and not x.any():
            # event-driven on the CPU: a step without input spikes costs no synaptic computation
            # (on an accelerator, asking whether there is any spike would wait for the device)
            drive = torch.zeros(x.shape[0], self.out_features, dtype=self.weight.dtype, device=x.device)
            if self.bias is not None:
                drive = drive + self.bias
        else:
            drive = reroute_input_gradient(self._linear, x, self._feedback_for(x))
        if self.drive_noise is not None:
            drive = drive + self.drive_noise
        if x.dim() == 2:
            spikes, self.state = self._step(x, drive, self.state)
            return spikes
        membrane = None
        steps = []
        for t in range(x.shape[0]):
            spikes, membrane = self._step(x[t], drive[t], membrane)
            steps.append(spikes)
        self.neuron.mem = torch.zeros(0)  # drop snntorch's reference to the last state and its graph
        return torch.stack(steps)

    def extra_repr(self) -> str:
        return f"{self.layer_name}: {self.in_features} -> {self.out_features}, LIF"


class SpikingMLP(nn.Module):
    """A chain of :class:`LeakyLinear` layers; ``forward`` maps input spikes to output spike counts.

    ``input_steps`` > 1: the input is already ``input_steps`` time bins (timed input);
    otherwise it is rate coded over ``num_steps`` steps.
    """

    def __init__(self, layers: list[LeakyLinear], num_steps: int, encoding_seed: int, input_steps: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.num_steps = num_steps
        self.encoding_seed = encoding_seed
        self.input_steps = input_steps

    def encode(self, x: Tensor) -> Tensor:
        """Input spike trains ``(time, batch, features)``: the bins of a timed input, else a rate code.

        A static input in [0, 1] is rate coded (see :func:`rate_encode`); a timed input
        ``(batch, T * F)`` is reshaped to ``(T, batch, F)``, its bins used as given.
        """
        if self.input_steps > 1:
            return x.reshape(x.shape[0], self.input_steps, -1).transpose(0, 1)
        return rate_encode(x, self.num_steps, self.encoding_seed)

    def forward(self, spikes: Tensor) -> Tensor:
        """Output spike counts ``(batch, out)`` for input spike trains ``(time, batch, in)``."""
        for layer in self.layers:
            spikes = layer(spikes)
        return spikes.sum(0)


class SpikingNetwork(Architecture):
    """Leaky integrate-and-fire network (snntorch), rate-coded input, spike-count readout."""

    name = "snn"
    description = "Spiking network of LIF neurons (snntorch), 784 -> hidden -> 10, rate-coded input"
    capabilities = frozenset(
        {"differentiable", "feedback", "node_noise", "signals", "dense", "time", "timed_input", STEPPING}
    )
    defaults = {
        "hidden": Hyperparameter(256, "the same width as the MLP (Lillicrap et al. 2016 width)"),
        "num_steps": Hyperparameter(
            25, "snntorch tutorials' MNIST rate-coded network (Eshraghian et al. 2023, tutorial 5)"
        ),
        "beta": Hyperparameter(0.95, "membrane decay of snntorch tutorial 5 (Eshraghian et al. 2023)"),
        "threshold": Hyperparameter(1.0, "snntorch Leaky default"),
        "surrogate": Hyperparameter(
            "fast_sigmoid",
            "SuperSpike's fast-sigmoid derivative 1/(1 + k|U - theta|)^2 (Zenke & Ganguli 2018), "
            "snntorch tutorial 5",
        ),
        "surrogate_slope": Hyperparameter(25.0, "k = 25, snntorch's fast_sigmoid default"),
    }
    profile_overrides = {
        "smoke": {"hidden": 128, "num_steps": 10},
        "ci": {"hidden": 128, "num_steps": 10},
    }
    run_overrides = {
        "ci": {"epochs": 1, "train_subset": 20000},
    }

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the two synapse layers (PyTorch's default init from ``generator``) and their LIF neurons.

        With a timed input (``self.input_steps`` > 1, set by the harness) the first layer
        reads one bin, ``input_size // input_steps`` features, per step.
        """
        hidden = int(self.config["hidden"])
        bins = int(self.input_steps)
        if bins < 1 or input_size % bins:
            raise ValueError(f"input_steps {bins} does not divide the input size {input_size}")
        steps = bins if bins > 1 else int(self.config["num_steps"])
        beta = float(self.config["beta"])
        if hidden < 1 or steps < 1:
            raise ValueError(f"hidden and num_steps must be positive, got {hidden}, {steps}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        name = self.config["surrogate"]
        if name not in SURROGATES:
            raise ValueError(f"unknown surrogate {name!r}; known: {sorted(SURROGATES)}")
        spike_grad = SURROGATES[name](float(self.config["surrogate_slope"]))
        sizes = [input_size // bins, hidden, num_classes]
        layers = [
            LeakyLinear(
                f"fc{i + 1}",
                sizes[i],
                sizes[i + 1],
                neuron=snn.Leaky(
                    beta=beta,
                    threshold=float(self.config["threshold"]),
                    spike_grad=spike_grad,
                    reset_mechanism="subtract",
                ),
                generator=generator,
            )
            for i in range(len(sizes) - 1)
        ]
        encoding_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        module = SpikingMLP(layers, steps, encoding_seed, input_steps=bins)
        return Network(module=module, layers=list(layers), architecture=self)

    def forward(self, module: nn.Module, x: Tensor) -> Tensor:
        """Encode ``x`` (rate code, or the bins of a timed input) and return the output spike counts."""
        return module(module.encode(x))


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the spiking network."""
    return [SpikingNetwork]
