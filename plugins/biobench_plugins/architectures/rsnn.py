"""Recurrent spiking network: leaky integrate-and-fire neurons with a leaky readout (e-prop's model).

The recurrent network of Bellec et al. (2020) with LIF neurons only (no adaptive
thresholds). Inputs are analog currents: by default an image is shown one row per time
step (``input = rows``: 28 steps of 28 pixels for MNIST, a temporal task that needs memory;
square images only); ``input = pixels`` shows all pixels at every one of ``num_steps`` steps.
A task whose input comes in time bins (``Task.input_steps`` > 1, e.g. N-MNIST's binned events;
capability ``timed_input``) is shown one bin per step, whatever ``input`` says. With ``x^t``
the input at step ``t = 1..T``:

    v^t = alpha v^{t-1} + W_in x^t + W_rec z^{t-1} - v_th z^{t-1}      (reset by subtraction)
    z^t = H(v^t - v_th)                                                 (spike: 1 above threshold)
    y^t = kappa y^{t-1} + W_out z^t + b_out                             (leaky, non-spiking readout)

with ``v^0 = z^0 = y^0 = 0``, ``alpha = exp(-1/tau_membrane)``, ``kappa = exp(-1/tau_readout)``
and no self-connections (the diagonal of ``W_rec`` is masked to 0, ``module.rec_mask``). The
logits are the readout at the last step, ``y^T`` (``readout = last``), or its mean over the
sequence (``mean``).

**Surrogate gradient.** ``H`` has Bellec et al.'s triangular pseudo-derivative (their code's
``pseudo_derivative`` with ``dampening_factor``):

    dz^t/dv^t := psi^t = (gamma / v_th) max(0, 1 - |v^t - v_th| / v_th),     gamma = surrogate_height

The harness's reference gradient (``differentiable``) is autograd through the whole sequence
with this surrogate: backprop through time (BPTT), including the paths through the
recurrent weights and the reset. e-prop uses the same ``psi`` (``module.pseudo_derivative``),
so the two differ only by what e-prop leaves out.

**Plastic layers.** Three :class:`biobench.PlasticLinear` synapse layers: ``in`` (inputs ->
neurons, no bias), ``rec`` (neurons -> neurons, no bias, diagonal masked) and ``out``
(neurons -> readout, with bias). Initialisation as in Bellec et al.'s code: ``W_in ~ N(0,
1/n_in)``, ``W_rec ~ N(0, 1/n_rec)`` (``models.py``), ``W_out`` Glorot-uniform (TensorFlow's
default in their tutorials), ``b_out = 0``; drawn from the run's generator.

**Capabilities.** ``recurrent`` (``biobench_plugins.capabilities.recurrent``), ``differentiable``,
``dense``, ``time``, ``timed_input`` and ``signals``: while recording, every step records, time first, for ``in``
``pre = x^t``, ``drive = W_in x^t``, ``post = z^t``, ``membrane = v^t``; for ``rec`` ``pre =
z^{t-1}``, ``drive = W_rec z^{t-1}``, ``post = z^t``, ``membrane = v^t``; for ``out`` ``pre =
z^t``, ``drive = W_out z^t + b_out``, ``post = y^t``. Rules that read signals as a feed-forward
chain of spiking layers (``signals`` without ``recurrent``) are declared unsupported by this
module's ``biobench_pairing_unsupported``, and so is ``input = rows`` with a task whose static
input is not a square image (e.g. CIFAR-10's 3,072 values). Not ``feedback``, ``node_noise`` or
``rate``.

**Budget.** ``ci`` trains 1 epoch on all 55,000 training images instead of 3 (``run_overrides``,
stored in every record): a step of backprop through 28 time steps costs about 8 times the
MLP's, and one epoch keeps each trained pairing near half a minute on one CPU thread.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import Architecture, Hyperparameter, Network, PlasticLinear, hookimpl

#: Capability of recurrent spiking networks (declared by ``biobench_plugins.capabilities.recurrent``).
RECURRENT = "recurrent"

INPUTS = ("rows", "pixels")
READOUTS = ("last", "mean")


def square_side(size: int) -> int | None:
    """The side of a square image of ``size`` values, or None when ``size`` is not a square."""
    side = math.isqrt(size)
    return side if side * side == size else None


def triangle_pseudo_derivative(v: Tensor, threshold: float, height: float) -> Tensor:
    """``(height / threshold) max(0, 1 - |v - threshold| / threshold)`` (Bellec et al. 2020)."""
    return (height / threshold) * (1.0 - (v - threshold).abs() / threshold).clamp(min=0.0)


class TriangleSpike(torch.autograd.Function):
    """``H(v - threshold)`` forward; the triangular pseudo-derivative backward."""

    @staticmethod
    def forward(ctx, v: Tensor, threshold: float, height: float) -> Tensor:  # noqa: D102
        ctx.save_for_backward(v)
        ctx.threshold, ctx.height = threshold, height
        return (v > threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        (v,) = ctx.saved_tensors
        return grad * triangle_pseudo_derivative(v, ctx.threshold, ctx.height), None, None


class RecurrentSynapses(PlasticLinear):
    """Dense synapses onto the recurrent neurons or the readout; ``mask`` zeroes connections."""

    def __init__(
        self,
        name: str,
        in_features: int,
        out_features: int,
        bias: bool,
        mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(name, in_features, out_features, activation=None, bias=bias, generator=generator)
        self.register_buffer("mask", mask)

    def effective_weight(self) -> Tensor:
        """The weight with masked connections set to 0."""
        return self.weight if self.mask is None else self.weight * self.mask

    def forward_matrix(self) -> Tensor:
        """The masked (out, in) matrix."""
        return self.effective_weight()

    def forward(self, x: Tensor) -> Tensor:
        """The synaptic drive ``x @ W.T + b`` (any leading dimensions)."""
        return F.linear(x, self.effective_weight(), self.bias)

    @torch.no_grad()
    def synaptic_operations(self, pre: Tensor) -> tuple[float, float, bool]:
        """A dense layer's counts over the connections that exist (masked ones are not synapses)."""
        flat = pre.detach().reshape(-1, pre.shape[-1])
        fan_out = (self.effective_weight().detach() != 0).sum(0).to(torch.float64)
        active = (flat != 0).sum(0).to(torch.float64)
        connections = self.in_features * self.out_features if self.mask is None else float(self.mask.sum())
        binary = bool(((flat == 0) | (flat == 1) | (flat == -1)).all())
        return float(flat.shape[0]) * connections, float(active @ fan_out), binary

    @property
    def recording(self) -> bool:
        """Whether signals are being recorded."""
        return self._recording

    def record_step(self, pre: Tensor, drive: Tensor, post: Tensor, membrane: Tensor | None) -> None:
        """Record the signals of one time step."""
        self._record(pre, drive, post, membrane)


class RecurrentLIF(nn.Module):
    """The recurrent LIF network and its leaky readout (see the module docstring)."""

    def __init__(
        self,
        input_layer: RecurrentSynapses,
        recurrent_layer: RecurrentSynapses,
        readout_layer: RecurrentSynapses,
        config: dict[str, Any],
        input_steps: int = 1,
    ) -> None:
        super().__init__()
        self.input_layer = input_layer
        self.recurrent_layer = recurrent_layer
        self.readout_layer = readout_layer
        self.input_mode = config["input"]
        self.num_steps = int(config["num_steps"])
        self.input_steps = input_steps
        self.alpha = math.exp(-1.0 / float(config["tau_membrane"]))
        self.kappa = math.exp(-1.0 / float(config["tau_readout"]))
        self.threshold = float(config["threshold"])
        self.surrogate_height = float(config["surrogate_height"])
        self.readout_mode = config["readout"]

    @property
    def rec_mask(self) -> Tensor:
        """The (n_rec, n_rec) mask of recurrent connections: 1 off the diagonal, 0 on it."""
        return self.recurrent_layer.mask

    def sequence(self, x: Tensor) -> Tensor:
        """The input currents ``(time, batch, features)`` of flattened inputs ``x``."""
        if self.input_steps > 1 or self.input_mode == "rows":
            side = self.input_layer.in_features
            return x.reshape(x.shape[0], -1, side).transpose(0, 1)
        return x.unsqueeze(0).expand(self.num_steps, *x.shape)

    def pseudo_derivative(self, v: Tensor) -> Tensor:
        """``psi = dz/dv`` of the surrogate at membrane potential ``v``."""
        return triangle_pseudo_derivative(v, self.threshold, self.surrogate_height)

    def readout(self, potentials: Tensor) -> Tensor:
        """Logits from the readout sequence ``(time, batch, classes)``: last step or mean."""
        return potentials[-1] if self.readout_mode == "last" else potentials.mean(0)

    def forward(self, x: Tensor) -> Tensor:
        """Simulate the sequence of ``x`` from rest; return the logits."""
        inputs = self.sequence(x)
        currents = self.input_layer(inputs)
        batch, units = inputs.shape[1], self.recurrent_layer.out_features
        v = inputs.new_zeros(batch, units)
        z = inputs.new_zeros(batch, units)
        recording = self.input_layer.recording
        spikes, previous, membranes, recurrent = [], [], [], []
        for t in range(inputs.shape[0]):
            drive = self.recurrent_layer(z)
            v = self.alpha * v + currents[t] + drive - self.threshold * z
            previous.append(z)
            z = TriangleSpike.apply(v, self.threshold, self.surrogate_height)
            spikes.append(z)
            if recording:
                membranes.append(v)
                recurrent.append(drive)
        spike_train = torch.stack(spikes)
        readout_drive = self.readout_layer(spike_train)
        y = torch.zeros_like(readout_drive[0])
        potentials = []
        for t in range(readout_drive.shape[0]):
            y = self.kappa * y + readout_drive[t]
            potentials.append(y)
        potentials = torch.stack(potentials)
        if recording:
            with torch.no_grad():
                for t in range(inputs.shape[0]):
                    self.input_layer.record_step(inputs[t], currents[t], spikes[t], membranes[t])
                    self.recurrent_layer.record_step(previous[t], recurrent[t], spikes[t], membranes[t])
                    self.readout_layer.record_step(spikes[t], readout_drive[t], potentials[t], None)
        return self.readout(potentials)


class RecurrentSpikingNetwork(Architecture):
    """Recurrent LIF network with a leaky readout, trained on images shown row by row."""

    name = "rsnn"
    description = "Recurrent spiking network (LIF, leaky readout), MNIST shown row by row: 28 steps x 28 inputs -> 128 -> 10"
    capabilities = frozenset({"differentiable", "dense", "time", "timed_input", "signals", RECURRENT})
    defaults = {
        "hidden": Hyperparameter(
            128, "the width of the snn's smoke and ci profiles; Bellec et al.'s tutorials use 100 neurons",
            minimum=1,
        ),
        "input": Hyperparameter(
            "rows",
            "one image row per step (sequential MNIST by rows): a temporal task that needs memory, "
            "e-prop's purpose; 'pixels' shows the whole image at every step",
            choices=INPUTS,
        ),
        "num_steps": Hyperparameter(10, "steps of the 'pixels' input (unused for rows)", minimum=1),
        "tau_membrane": Hyperparameter(
            20.0, "tau_v = 20 ms at 1 ms per step (Bellec et al.'s evidence-accumulation tutorial)",
            minimum=0.0, exclusive_minimum=True,
        ),
        "tau_readout": Hyperparameter(
            20.0, "tau_out = 20 ms at 1 ms per step (Bellec et al.'s evidence-accumulation tutorial)",
            minimum=0.0, exclusive_minimum=True,
        ),
        "threshold": Hyperparameter(
            0.6, "thr = 0.6 (Bellec et al.'s evidence-accumulation tutorial)",
            minimum=0.0, exclusive_minimum=True,
        ),
        "surrogate": Hyperparameter(
            "triangle",
            "Bellec et al. 2020's pseudo-derivative (gamma / v_th) max(0, 1 - |v - v_th| / v_th)",
            choices=("triangle",),
        ),
        "surrogate_height": Hyperparameter(
            0.3, "gamma = dampening_factor = 0.3 (Bellec et al.'s code)", minimum=0.0, exclusive_minimum=True
        ),
        "readout": Hyperparameter(
            "last",
            "the readout at the end of the sequence, when the whole image has been seen; 'mean' "
            "averages it over the sequence",
            choices=READOUTS,
        ),
    }
    run_overrides = {
        "ci": {"epochs": 1},
    }

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the three synapse layers with Bellec et al.'s initialisation drawn from ``generator``."""
        config = self.config
        hidden = int(config["hidden"])
        bins = int(self.input_steps)
        if bins > 1:
            if input_size % bins:
                raise ValueError(f"input_steps {bins} does not divide the input size {input_size}")
            inputs = input_size // bins
        elif config["input"] == "rows":
            inputs = square_side(input_size)
            if inputs is None:
                raise ValueError(f"input 'rows' needs square images; the input has {input_size} values")
        else:
            inputs = input_size
        mask = 1.0 - torch.eye(hidden)
        input_layer = RecurrentSynapses("in", inputs, hidden, bias=False, generator=generator)
        recurrent_layer = RecurrentSynapses("rec", hidden, hidden, bias=False, mask=mask, generator=generator)
        readout_layer = RecurrentSynapses("out", hidden, num_classes, bias=True, generator=generator)
        glorot = math.sqrt(6.0 / (hidden + num_classes))
        with torch.no_grad():
            input_layer.weight.copy_(torch.randn(hidden, inputs, generator=generator) / math.sqrt(inputs))
            recurrent_layer.weight.copy_(torch.randn(hidden, hidden, generator=generator) / math.sqrt(hidden) * mask)
            readout_layer.weight.copy_((torch.rand(num_classes, hidden, generator=generator) * 2 - 1) * glorot)
            readout_layer.bias.zero_()
        module = RecurrentLIF(input_layer, recurrent_layer, readout_layer, config, input_steps=bins)
        return Network(module=module, layers=[input_layer, recurrent_layer, readout_layer], architecture=self)


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the recurrent spiking network."""
    return [RecurrentSpikingNetwork]


@hookimpl
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """Rules that read signals as a feed-forward chain cannot train the network; rows need square images."""
    if not isinstance(architecture, RecurrentSpikingNetwork):
        return None
    size = getattr(task, "input_size", None)
    static = getattr(task, "input_steps", 1) == 1
    if static and architecture.config["input"] == "rows" and size is not None and square_side(size) is None:
        return (
            f"architecture {architecture.name!r} shows an image one row per step and needs square "
            f"images; task {getattr(task, 'name', '?')!r} has {size} input values "
            f"(--arch-option input='\"pixels\"' shows the whole input at every step)"
        )
    requires = set(getattr(rule, "requires", ()))
    if RECURRENT in requires or "signals" not in requires:
        return None
    return (
        f"rule {rule.name!r} reads the recorded signals as a feed-forward chain of layers (each "
        f"layer's output drives the next); in architecture {architecture.name!r} the recurrent "
        f"neurons drive themselves through layer 'rec' and the readout 'out', so a rule for it "
        f"must declare {RECURRENT!r} ({capabilities.get(RECURRENT, 'undeclared')})"
    )
