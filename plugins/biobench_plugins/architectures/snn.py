"""Spiking network: 784 -> hidden ... -> 10 leaky integrate-and-fire neurons built with snntorch.

``hidden`` lists the widths of the hidden layers, any number of them (``[1000]``
is snntorch tutorial 5's network; ``[]`` connects the input to the output
neurons directly). Each synapse layer is a :class:`biobench.PlasticLinear` (no
activation) whose synaptic current drives a population of snntorch ``Leaky``
neurons, the network's only non-linearity:

    I_l[t] = W_l s_{l-1}[t] + b_l (+ drive_noise)
    U_l[t] = beta U_l[t-1] + I_l[t] - theta S_l[t-1]        (reset by subtraction)
    S_l[t] = H(U_l[t] - theta)

with ``U_l[0] = 0`` and ``s_0`` the encoded input. The spike non-linearity ``H`` has
the surrogate derivative named in the config (``surrogate``, ``surrogate_slope``),
through which autograd runs backprop through time (BPTT).

**Input encoding** (``encoding``). ``rate`` (default): pixel intensity ``p`` in
[0, 1] becomes a Bernoulli spike train, a spike with probability ``p`` at each of
``num_steps`` time steps. ``current``: the image itself is the input at every
step, ``s_0[t] = x``, so the first layer receives the constant current ``W_1 x + b_1``
(snntorch tutorial 5; computed once per presentation and reused at every step).

**Timed input** (capability ``timed_input``). A task whose input comes in time bins
(``Task.input_steps`` = ``T`` > 1, e.g. N-MNIST's binned events) gives a flattened
``(batch, T * F)`` input, bin ``t`` at ``x[:, t*F:(t+1)*F]``. The harness sets
``architecture.input_steps = T`` before ``build``: the first layer then has ``F``
inputs, the presentation lasts ``T`` steps (``num_steps`` applies to static inputs
only) and bin ``t`` is the input spike vector of step ``t``, as given: no
encoding, no randomness, and an input gradient (FGSM) flows to the bins directly.
The ``encoding`` option applies to static inputs only.

**Readout** (``readout``). The logits, which the prediction (argmax) reads, are
``spike_count`` (default): the output neurons' spike counts over the
presentation, ``logits_k = sum_t S_L,k[t]`` (ties go to the lowest index, as
``argmax`` does); ``membrane_mean``: the output membrane potential averaged over
the steps, ``(1/T) sum_t U_L,k[t]``; or ``membrane_last``: ``U_L,k[T]`` at the last
step. The output neurons spike and reset in every case (as in snntorch tutorial 5),
so local rules see output spikes whatever the readout.

**Loss per time step** (``per_step_loss``). ``none`` (default): the task loss of
the logits. ``sum`` or ``mean``: the task loss of the output membrane potential
at every step, summed (snntorch tutorial 5: ``sum_t CE(U_L[t], y)``) or averaged
over the steps (the logits carry the step outputs, :func:`biobench.with_step_outputs`);
the prediction still comes from the readout. The loss then does not depend on the
logits, so rules that take the output error as ``dL/dlogits`` (direct feedback
alignment) are unsupported with it, and the harness's direct-feedback alignment
angle is null.

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
(straight-through estimator of the Bernoulli sampling). The current encoding is
deterministic and differentiable as it is.

**Initialisation** (``init``, ``init_scale``, ``bias_init``): as the MLP's, for
every synapse layer (:func:`biobench.initialize_linear`); ``default`` is
PyTorch's ``nn.Linear`` draw, as snntorch's tutorials use.

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
first: ``pre`` (input spikes; the image itself for the first layer with the current
encoding), ``drive`` (synaptic current), ``post`` (output spikes) and ``membrane``
(``U[t]``; the reset of a spike at ``t`` is applied at ``t + 1``), each
``(time, batch, features)``. Local rules compute their spike traces from these;
the ones that read pre-synaptic spike trains (they require ``signals`` and
``time``: STDP, spike error propagation) are unsupported with the current
encoding, whose first layer receives no spikes.

**Budget.** The ``ci`` and ``smoke`` profiles use 10 time steps and
``hidden=[128]`` unless the run sets ``hidden`` (``profile_overrides``), and ``ci``
trains 1 epoch on the first 20,000 training images (``run_overrides``); both are
stored in every record. ``full`` uses the defaults.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import snntorch as snn
import torch
from snntorch import surrogate
from torch import Tensor, nn

from biobench import (
    STEP_REDUCTIONS,
    Architecture,
    FeedbackFn,
    Hyperparameter,
    Network,
    PaperSetup,
    PlasticLinear,
    PublishedValue,
    content_key,
    hookimpl,
    initialize_linear,
    keyed_uniform,
    on_accelerator,
    reroute_input_gradient,
    weight_init_options,
    with_step_outputs,
)

#: Surrogate derivatives of the spike non-linearity, by config name (snntorch.surrogate).
SURROGATES: dict[str, Callable[[float], Callable[[Tensor], Tensor]]] = {
    "fast_sigmoid": lambda slope: surrogate.fast_sigmoid(slope=slope),
    "atan": lambda slope: surrogate.atan(alpha=slope),
    "sigmoid": lambda slope: surrogate.sigmoid(slope=slope),
}

_SEED_MODULUS = 2**63 - 1

#: How the input image becomes the first layer's input at every step.
ENCODINGS = ("rate", "current")
#: What the logits (and the prediction) are made of.
READOUTS = ("spike_count", "membrane_mean", "membrane_last")
#: Loss per time step on the output membrane potential: none, or the reduction over steps.
PER_STEP_LOSSES = ("none", *STEP_REDUCTIONS)
#: Rules that take the output error as dL/dlogits, which a per-step loss does not define.
OUTPUT_ERROR_RULES = frozenset({"direct_feedback_alignment"})

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


def device_uniform(values: Tensor, num_steps: int, seed: int) -> Tensor:
    """Uniform numbers in [0, 1) of shape ``(num_steps, *values.shape)``, a function of ``values``' bits, on their device.

    ``key = hash32(sum_j hash32(bits_j xor hash32(j)) mod 2**32 xor seed bits)``: the
    batch's content, order included, and the encoding seed (:func:`content_key`);
    element ``i`` of the result is ``hash32(hash32(i xor key) + key) / 2**32`` to 24
    bits, exact in float32 (:func:`keyed_uniform`). Integer arithmetic only, the same
    on every device; nothing is read back to the host.
    """
    key, shape = content_key(values, seed), tuple(values.shape)
    # one step at a time: int64 temporaries of one step's size
    return torch.stack([keyed_uniform(key, t * values.numel(), shape) for t in range(num_steps)])


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
        #: Keep the membrane potential of every step of the next sequence call in ``membrane_trace``.
        self.keep_membrane = False
        self.membrane_trace: Tensor | None = None

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
        elif x.dim() == 3 and x.stride(0) == 0 and self.feedback is None:
            # the same input at every step (current encoding): one synaptic computation
            drive = self._linear(x[0]).unsqueeze(0).expand(x.shape[0], -1, -1)
        else:
            drive = reroute_input_gradient(self._linear, x, self._feedback_for(x))
        if self.drive_noise is not None:
            drive = drive + self.drive_noise
        if x.dim() == 2:
            spikes, self.state = self._step(x, drive, self.state)
            return spikes
        membrane = None
        steps = []
        membranes = []
        for t in range(x.shape[0]):
            spikes, membrane = self._step(x[t], drive[t], membrane)
            steps.append(spikes)
            if self.keep_membrane:
                membranes.append(membrane)
        self.neuron.mem = torch.zeros(0)  # drop snntorch's reference to the last state and its graph
        if self.keep_membrane:
            self.membrane_trace = torch.stack(membranes)
        return torch.stack(steps)

    def extra_repr(self) -> str:
        return f"{self.layer_name}: {self.in_features} -> {self.out_features}, LIF"


class SpikingMLP(nn.Module):
    """A chain of :class:`LeakyLinear` layers; ``forward`` maps encoded inputs to the readout's logits.

    ``input_steps`` > 1: the input is already ``input_steps`` time bins (timed input);
    otherwise it is encoded (``encoding``) over ``num_steps`` steps.
    """

    def __init__(
        self,
        layers: list[LeakyLinear],
        num_steps: int,
        encoding_seed: int,
        encoding: str = "rate",
        readout: str = "spike_count",
        per_step_loss: str = "none",
        input_steps: int = 1,
    ) -> None:
        super().__init__()
        if encoding not in ENCODINGS or readout not in READOUTS or per_step_loss not in PER_STEP_LOSSES:
            raise ValueError(
                f"encoding {encoding!r}, readout {readout!r}, per_step_loss {per_step_loss!r}: known are "
                f"{ENCODINGS}, {READOUTS}, {PER_STEP_LOSSES}"
            )
        self.layers = nn.ModuleList(layers)
        self.num_steps = num_steps
        self.encoding_seed = encoding_seed
        self.encoding = encoding
        self.readout = readout
        self.per_step_loss = per_step_loss
        self.input_steps = input_steps
        self.layers[-1].keep_membrane = readout != "spike_count" or per_step_loss != "none"

    def encode(self, x: Tensor) -> Tensor:
        """The input of every step, ``(time, batch, features)``.

        A timed input ``(batch, T * F)`` is reshaped to ``(T, batch, F)``, its bins used
        as given; a static input in [0, 1] is rate coded (:func:`rate_encode`) or, with
        the current encoding, repeated at each of the ``num_steps`` steps.
        """
        if self.input_steps > 1:
            return x.reshape(x.shape[0], self.input_steps, -1).transpose(0, 1)
        if self.encoding == "current":
            return x.unsqueeze(0).expand(self.num_steps, *x.shape)
        return rate_encode(x, self.num_steps, self.encoding_seed)

    def forward(self, spikes: Tensor) -> Tensor:
        """Logits ``(batch, out)`` of the readout for encoded inputs ``(time, batch, in)``."""
        for layer in self.layers:
            spikes = layer(spikes)
        output = self.layers[-1]
        if not output.keep_membrane:
            return spikes.sum(0)
        membrane, output.membrane_trace = output.membrane_trace, None
        if self.readout == "spike_count":
            logits = spikes.sum(0)
        elif self.readout == "membrane_mean":
            logits = membrane.mean(0)
        else:
            logits = membrane[-1]
        if self.per_step_loss != "none":
            logits = with_step_outputs(logits, membrane, self.per_step_loss)
        return logits


#: snntorch tutorial 5: surrogate-gradient BPTT of a 784-1000-10 LIF network, one epoch of MNIST.
SNNTORCH_TUTORIAL_5 = PaperSetup(
    id="snntorch_tutorial5_bptt",
    citation=(
        "Eshraghian, Ward, Neftci, Wang, Lenz, Dwivedi, Bennamoun, Jeong & Lu (2023), Training spiking "
        "neural networks using lessons from deep learning, Proceedings of the IEEE 111(9):1016-1054; "
        "snntorch tutorial 5, 'Training Spiking Neural Networks with snntorch'"
    ),
    source=(
        "github.com/jeshraghian/snntorch docs/tutorials/tutorial_5.rst (last changed in commit 6d1c48e, "
        "read at 634fc22): batch 128 (l.390), inputs ToTensor + Normalize((0,), (1,)) in [0, 1] "
        "(l.399-403), 784-1000-10 nn.Linear + snn.Leaky(beta=0.95) (l.420-439), 25 steps (l.425), "
        "the image as the input current of every step (l.451-453), nn.CrossEntropyLoss of the output "
        "membrane potential summed over the steps (l.520, l.655-657), Adam lr 5e-4 betas (0.9, 0.999) "
        "(l.530), 1 epoch (l.635), prediction by output spike count (l.748), 'Total correctly "
        "classified test set images: 9387/10000', 'Test Set Accuracy: 93.87%' (l.756-757); "
        "snn.Leaky's default surrogate is atan(alpha=2.0) (snntorch/_neurons/neurons.py l.52, "
        "snntorch/surrogate.py l.206)"
    ),
    task="mnist",
    architecture="snn",
    rule="backprop",
    published=(
        PublishedValue(
            "test_acc",
            0.9387,
            0.01,
            "test accuracy on the 10,000 MNIST test images after one epoch (9387/10000): one "
            "illustrative run without a seed; the tolerance of one point is a judgment, not from the source",
        ),
    ),
    run={"epochs": 1, "batch_size": 128, "validation": False},
    optimizer={"name": "adam", "lr": 5e-4, "beta1": 0.9, "beta2": 0.999},
    architecture_options={
        "hidden": [1000],
        "num_steps": 25,
        "beta": 0.95,
        "threshold": 1.0,
        "surrogate": "atan",
        "surrogate_slope": 2.0,
        "encoding": "current",
        "readout": "spike_count",
        "per_step_loss": "sum",
        "init": "default",
    },
    profile="full",
    seeds=3,
    notes=(
        "Departures: the tutorial drops the last incomplete batch (drop_last=True: 468 batches, "
        "59,904 images per epoch); biobench trains on all 60,000 (469 batches, the last of 96). The "
        "tutorial also evaluates one test mini-batch after every update (no effect on training). "
        "Its random draws (initialisation, shuffling) come from torch's unseeded global generator, "
        "biobench's from the run's seed. Resize((28, 28)) and Grayscale() are identities on MNIST."
    ),
)


class SpikingNetwork(Architecture):
    """Leaky integrate-and-fire network (snntorch); rate or current input, spike-count or membrane readout."""

    name = "snn"
    description = (
        "Spiking network of LIF neurons (snntorch), 784 -> hidden ... -> 10, rate-coded or current input"
    )
    capabilities = frozenset(
        {"differentiable", "feedback", "node_noise", "signals", "dense", "time", "timed_input", STEPPING}
    )
    defaults = {
        "hidden": Hyperparameter(
            [256], "the same width as the MLP (Lillicrap et al. 2016 width); one hidden layer", minimum=1
        ),
        "num_steps": Hyperparameter(
            25, "snntorch tutorials' MNIST network (Eshraghian et al. 2023, tutorial 5)", minimum=1
        ),
        "beta": Hyperparameter(
            0.95, "membrane decay of snntorch tutorial 5 (Eshraghian et al. 2023)", minimum=0.0, maximum=1.0
        ),
        "threshold": Hyperparameter(1.0, "snntorch Leaky default", minimum=0.0, exclusive_minimum=True),
        "surrogate": Hyperparameter(
            "fast_sigmoid",
            "SuperSpike's fast-sigmoid derivative 1/(1 + k|U - theta|)^2 (Zenke & Ganguli 2018), "
            "snntorch tutorial 6 (tutorial 5 uses snn.Leaky's default, atan with alpha 2)",
            choices=tuple(SURROGATES),
        ),
        "surrogate_slope": Hyperparameter(
            25.0, "k = 25, snntorch's fast_sigmoid default", minimum=0.0, exclusive_minimum=True
        ),
        "encoding": Hyperparameter(
            "rate",
            "rate coding (Bernoulli spikes with probability = intensity), snntorch tutorial 1; "
            "'current': the image as a constant input current, snntorch tutorial 5",
            choices=ENCODINGS,
        ),
        "readout": Hyperparameter(
            "spike_count",
            "the output neuron that fires most, as snntorch tutorial 5 predicts; 'membrane_mean' / "
            "'membrane_last': the output membrane potential averaged over the steps / at the last step",
            choices=READOUTS,
        ),
        "per_step_loss": Hyperparameter(
            "none",
            "the task loss of the logits; 'sum' / 'mean': the task loss of the output membrane "
            "potential at every step summed (snntorch tutorial 5) / averaged over the steps",
            choices=PER_STEP_LOSSES,
        ),
        **weight_init_options(
            "PyTorch's nn.Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and "
            "biases, as in snntorch tutorial 5"
        ),
    }
    profile_overrides = {
        "smoke": {"hidden": [128], "num_steps": 10},
        "ci": {"hidden": [128], "num_steps": 10},
    }
    run_overrides = {
        "ci": {"epochs": 1, "train_subset": 20000},
    }
    published_setups = (SNNTORCH_TUTORIAL_5,)

    def __init__(self, **overrides: Any) -> None:
        hidden = overrides.get("hidden")
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            overrides = {**overrides, "hidden": [hidden]}  # one hidden layer of that width
        super().__init__(**overrides)

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the synapse layers (``init`` from ``generator``, layer by layer) and their LIF neurons.

        With a timed input (``self.input_steps`` > 1, set by the harness) the first layer
        reads one bin, ``input_size // input_steps`` features, per step.
        """
        c = self.config
        hidden = [int(h) for h in c["hidden"]]
        bins = int(self.input_steps)
        if bins < 1 or input_size % bins:
            raise ValueError(f"input_steps {bins} does not divide the input size {input_size}")
        steps = bins if bins > 1 else int(c["num_steps"])
        beta = float(c["beta"])
        if any(h < 1 for h in hidden) or steps < 1:
            raise ValueError(f"hidden widths and num_steps must be positive, got {hidden}, {steps}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        name = c["surrogate"]
        if name not in SURROGATES:
            raise ValueError(f"unknown surrogate {name!r}; known: {sorted(SURROGATES)}")
        spike_grad = SURROGATES[name](float(c["surrogate_slope"]))
        sizes = [input_size // bins, *hidden, num_classes]
        layers = []
        for i in range(len(sizes) - 1):
            layer = LeakyLinear(
                f"fc{i + 1}",
                sizes[i],
                sizes[i + 1],
                neuron=snn.Leaky(
                    beta=beta,
                    threshold=float(c["threshold"]),
                    spike_grad=spike_grad,
                    reset_mechanism="subtract",
                ),
                generator=generator,
            )
            initialize_linear(layer, c["init"], float(c["init_scale"]), generator, c["bias_init"])
            layers.append(layer)
        encoding_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        module = SpikingMLP(
            layers, steps, encoding_seed, c["encoding"], c["readout"], c["per_step_loss"], input_steps=bins
        )
        return Network(module=module, layers=list(layers), architecture=self)

    def forward(self, module: nn.Module, x: Tensor) -> Tensor:
        """Encode ``x`` (see :meth:`SpikingMLP.encode`) and return the readout's logits."""
        return module(module.encode(x))


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the spiking network."""
    return [SpikingNetwork]


@hookimpl
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """Explain which rules an input encoding or a per-step loss of the spiking network rules out."""
    if not isinstance(architecture, SpikingNetwork):
        return None
    config = architecture.config
    requires = set(getattr(rule, "requires", ()))
    static_input = int(getattr(task, "input_steps", 1)) <= 1  # a timed input is used as given
    if config["encoding"] == "current" and static_input and {"signals", "time"} <= requires:
        return (
            f"rule {rule.name!r} learns from the recorded pre-synaptic spike trains (it requires "
            f"'signals' and 'time'); with encoding='current' the first layer's input is the image "
            f"as a constant current, not spikes (use encoding='rate')"
        )
    if config["per_step_loss"] != "none" and getattr(rule, "name", None) in OUTPUT_ERROR_RULES:
        return (
            f"rule {rule.name!r} takes the output error as dL/dlogits; with "
            f"per_step_loss={config['per_step_loss']!r} the loss is a function of the output membrane "
            f"potential at every step, not of the logits (use per_step_loss='none')"
        )
    return None
