"""Competitive spiking network of Diehl & Cook (2015): Poisson input -> excitatory LIF neurons <-> inhibitory neurons.

The network of Diehl & Cook, "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99 (2015), with the
equations and constants of the authors' released code (``peter-u-diehl/stdp-mnist``,
``Diehl&Cook_spiking_MNIST.py``), simulated in discrete time with step ``dt``:

* **Input.** Pixel ``p`` in [0, 1] fires as a Poisson process at ``p * max_rate_hz``
  (63.75 Hz for a white pixel: intensity 255 / 8 * 2). When the excitatory
  neurons fire fewer than ``min_spikes`` (5) spikes in a presentation, the image is
  presented again with the maximal rate raised by ``rate_step_hz`` (+1 intensity,
  31.875 Hz), at most ``max_presentations`` times.
* **Excitatory neurons** (``neurons`` of them), conductance-based LIF:
  ``tau_e dv/dt = (v_rest - v) + g_e (E_exc - v) + g_i (E_inh - v)`` with
  ``tau_e = 100 ms``, ``v_rest = v_reset = -65 mV``, ``E_exc = 0``, ``E_inh = -100 mV``,
  refractory 5 ms; a spike when ``v > theta - 20 mV - 52 mV``. The adaptive
  threshold ``theta`` starts at 20 mV and grows by ``theta_plus = 0.05 mV`` per
  spike while learning (the rule keeps it, ``module.theta``; frozen in evaluation).
* **Inhibitory neurons**, one per excitatory neuron: ``tau_i = 10 ms``,
  ``v_rest = -60``, ``v_reset = -45``, threshold ``-40 mV``, refractory 2 ms.
* **Synapses.** Conductances jump by the weight at a pre-synaptic spike and decay
  with ``tau_ge = 1 ms`` and ``tau_gi = 2 ms``. Input -> excitatory: the plastic
  weights ``W`` (``fc1``, shape (neurons, 784), in [0, 1], initially
  ``0.3 (U(0, 1) + 0.01)``). Excitatory -> its inhibitory partner: 10.4.
  Inhibitory -> every *other* excitatory neuron: 17.0 (lateral inhibition).
* **Time stepping** (per step: Brian's order): membranes by forward Euler,
  conductances by their exact exponential decay, refractory neurons held at their
  reset potential; then threshold and reset; then spikes raise the target
  conductances, which act from the next step.

**Read-out.** Each excitatory neuron is assigned to a class (``module.assignments``,
-1 while unassigned), state the learning rule updates from the neurons' responses
to labelled training images. The logits are, for each class, the mean spike count
over a presentation of the neurons assigned to it (0 for a class without neurons),
so the prediction is the class whose neurons respond most (Diehl & Cook's
"summed rates / number of assignments"). The network has no gradient: it declares
``signals``, ``time`` and ``assigned_readout``, not ``differentiable``.

**Signals.** While recording, the layer keeps, for each step of the image's last
presentation, the input spikes (``pre``, (time, batch, 784)), the input conductance
increments (``drive``) and the excitatory spikes (``post``, (time, batch, neurons)).

**Departures** from the released code: each presentation starts from rest
(membranes at rest, conductances and traces at zero) instead of a 150 ms pause
without input; no synaptic delays (the code draws input delays from 0-10 ms); a
batch of images is simulated in parallel, each image with its own neurons but the
same weights and thresholds; the repeat loop is capped; the Euler step of the
membranes is taken after the conductances of the previous step (Brian 1 may
integrate the linear equations exactly). The input Poisson spikes of a batch are
drawn from a generator seeded by (encoding seed, CRC-32 of the batch's bytes,
presentation), so a batch always gets the same spikes.

**On an accelerator** the same network runs without reading the device: the input
spikes come from a counter-based hash of (encoding seed, presentation, a hash of
the batch's bits, step, pixel) computed where the batch lives
(``biobench.keyed_uniform``, as the rate-coded network's), so a batch still always
gets the same spikes, but not the CPU's; the input conductances are the dense
product of the spikes with the weights (the CPU adds the rows of the pixels that
fired); and every repeat presentation simulates the whole batch and keeps the new
response only for the images still below ``min_spikes`` (asking whether any image
is left would wait for the device): each image keeps, as on the CPU, the first
presentation that reached ``min_spikes`` (else the last), at the cost of
``max_presentations`` presentations of every batch.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import torch
from torch import Tensor, nn

from biobench import (
    Architecture,
    Hyperparameter,
    Network,
    PlasticLayer,
    content_key,
    hookimpl,
    keyed_uniform,
    on_accelerator,
)

ASSIGNED_READOUT = "assigned_readout"
CODE = "Diehl & Cook's code (peter-u-diehl/stdp-mnist, Diehl&Cook_spiking_MNIST.py)"

#: Constants of the released code (mV, ms).
V_REST_E, V_RESET_E, V_THRESH_E, THETA_OFFSET = -65.0, -65.0, -52.0, 20.0
V_REST_I, V_RESET_I, V_THRESH_I = -60.0, -45.0, -40.0
E_EXC, E_INH_E, E_INH_I = 0.0, -100.0, -85.0
TAU_E, TAU_I, TAU_GE, TAU_GI = 100.0, 10.0, 1.0, 2.0
REFRACTORY_E, REFRACTORY_I = 5.0, 2.0
INITIAL_THETA = 20.0

_SEED_MODULUS = 2**63 - 1


class InputSynapses(PlasticLayer):
    """The plastic input -> excitatory synapses: ``weight`` (neurons, inputs), conductance jumps in [0, 1]."""

    def __init__(self, name: str, in_features: int, out_features: int, scale: float, generator: torch.Generator) -> None:
        super().__init__(name)
        initial = scale * (torch.rand(out_features, in_features, generator=generator) + 0.01)
        self.weight = nn.Parameter(initial)
        self.bias = None

    def forward(self, spikes: Tensor) -> Tensor:
        """The excitatory conductance increments ``spikes @ W^T`` for one step's input spikes (batch, inputs)."""
        return spikes @ self.weight.t()

    @property
    def recording(self) -> bool:
        """Whether the layer is recording its signals."""
        return self._recording

    def record_step(self, pre: Tensor, drive: Tensor, post: Tensor) -> None:
        """Keep one step's input spikes, conductance increments and output spikes (while recording)."""
        self._record(pre, drive, post)

    def extra_repr(self) -> str:
        return f"{self.layer_name}: {self.in_features} -> {self.out_features}, conductance LIF with lateral inhibition"


class CompetitiveSpikingModule(nn.Module):
    """The simulated network; ``forward`` maps images to per-class scores (see the module docstring)."""

    def __init__(self, layer: InputSynapses, num_classes: int, config: dict, encoding_seed: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([layer])
        self.num_classes = num_classes
        self.dt = float(config["dt"])
        self.presentation_ms = float(config["presentation_ms"])
        self.steps = int(round(float(config["presentation_ms"]) / self.dt))
        self.max_rate_hz = float(config["max_rate_hz"])
        self.rate_step_hz = float(config["rate_step_hz"])
        self.min_spikes = int(config["min_spikes"])
        self.max_presentations = int(config["max_presentations"])
        self.excitatory_to_inhibitory = float(config["excitatory_to_inhibitory"])
        self.inhibitory_to_excitatory = float(config["inhibitory_to_excitatory"])
        self.theta_plus = float(config["theta_plus"])
        self.encoding_seed = encoding_seed
        neurons = layer.out_features
        self.register_buffer("theta", torch.full((neurons,), INITIAL_THETA))
        self.register_buffer("assignments", torch.full((neurons,), -1, dtype=torch.long))

    @property
    def synapses(self) -> InputSynapses:
        """The plastic input synapses."""
        return self.layers[0]

    def scores(self, counts: Tensor) -> Tensor:
        """Per-class mean spike count of the assigned neurons, (batch, classes); 0 for a class without neurons."""
        assigned = self.assignments >= 0
        classes = nn.functional.one_hot(self.assignments.clamp(min=0), self.num_classes)
        one_hot = (classes * assigned[:, None]).to(device=counts.device, dtype=counts.dtype)
        return (counts @ one_hot) / one_hot.sum(0).clamp(min=1.0)

    def _generator(self, x: Tensor, presentation: int) -> torch.Generator:
        """The CPU's input spike generator: seeded by the encoding seed, the CRC-32 of ``x``'s bytes and ``presentation``."""
        checksum = zlib.crc32(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        seed = (self.encoding_seed * 4_294_967_311 + checksum * 7919 + presentation) % _SEED_MODULUS
        return torch.Generator().manual_seed(seed)

    def _key(self, x: Tensor, presentation: int) -> Tensor:
        """An accelerator's input spike key, on ``x``'s device: a hash of the encoding seed, ``presentation`` and ``x``'s bits."""
        seed = (self.encoding_seed * 4_294_967_311 + presentation) % _SEED_MODULUS
        return content_key(x.detach().to(torch.float32), seed)

    @torch.no_grad()
    def present(self, x: Tensor, rate_hz: float, adapt: bool, record: bool, presentation: int = 0):
        """Simulate one presentation of ``x`` (batch, inputs) from rest at maximal rate ``rate_hz``.

        Returns the excitatory spike counts (batch, neurons) and, with ``record``, the
        (time, batch, ·) input spikes, conductance increments and excitatory spikes.
        ``adapt``: thresholds grow by ``theta_plus`` per spike during the presentation.
        """
        batch, neurons, device = x.shape[0], self.synapses.out_features, x.device
        weight_t = self.synapses.weight.detach().t().contiguous()  # (inputs, neurons)
        dt = self.dt
        if on_accelerator(device):  # dense spikes from a hash on the device (see the module docstring)
            key = self._key(x, presentation)
            probability = (x * rate_hz * dt / 1000.0).clamp(max=1.0)
        else:  # the pixels that can fire, and the CPU's generator
            key = None
            generator = self._generator(x, presentation)
            rows, columns = torch.nonzero(x > 0, as_tuple=True)
            probability = (x[rows, columns] * rate_hz * dt / 1000.0).clamp(max=1.0)
        decay_ge, decay_gi = math.exp(-dt / TAU_GE), math.exp(-dt / TAU_GI)
        refractory_e, refractory_i = round(REFRACTORY_E / dt), round(REFRACTORY_I / dt)
        v_e = torch.full((batch, neurons), V_REST_E, device=device)
        v_i = torch.full((batch, neurons), V_REST_I, device=device)
        ge_e = torch.zeros(batch, neurons, device=device)
        gi_e = torch.zeros(batch, neurons, device=device)
        ge_i = torch.zeros(batch, neurons, device=device)
        wait_e = torch.zeros(batch, neurons, device=device)
        wait_i = torch.zeros(batch, neurons, device=device)
        theta = self.theta.expand(batch, neurons).clone()
        counts = torch.zeros(batch, neurons, device=device)
        trains = ([], [], []) if record else None
        for step in range(self.steps):
            v_e = v_e + dt / TAU_E * ((V_REST_E - v_e) + ge_e * (E_EXC - v_e) + gi_e * (E_INH_E - v_e))
            v_i = v_i + dt / TAU_I * ((V_REST_I - v_i) + ge_i * (E_EXC - v_i))
            ge_e.mul_(decay_ge)
            gi_e.mul_(decay_gi)
            ge_i.mul_(decay_ge)
            v_e = torch.where(wait_e > 0, V_RESET_E, v_e)
            v_i = torch.where(wait_i > 0, V_RESET_I, v_i)
            spikes_e = (v_e > theta - THETA_OFFSET + V_THRESH_E) & (wait_e <= 0)
            spikes_i = (v_i > V_THRESH_I) & (wait_i <= 0)
            v_e = torch.where(spikes_e, V_RESET_E, v_e)
            v_i = torch.where(spikes_i, V_RESET_I, v_i)
            wait_e = torch.where(spikes_e, float(refractory_e), wait_e - 1.0)
            wait_i = torch.where(spikes_i, float(refractory_i), wait_i - 1.0)
            s_e, s_i = spikes_e.float(), spikes_i.float()
            counts.add_(s_e)
            if adapt:
                theta.add_(self.theta_plus * s_e)
            if key is not None:
                pre = (keyed_uniform(key, step * x.numel(), tuple(x.shape)) < probability).to(weight_t.dtype)
                increment = pre @ weight_t
            else:
                fired = torch.rand(probability.shape, generator=generator) < probability
                increment = torch.zeros(batch, neurons)
                increment.index_add_(0, rows[fired], weight_t[columns[fired]])
                if record:
                    pre = torch.zeros(batch, x.shape[1])
                    pre[rows[fired], columns[fired]] = 1.0
            ge_e.add_(increment)
            ge_i.add_(self.excitatory_to_inhibitory * s_e)
            gi_e.add_(self.inhibitory_to_excitatory * (s_i.sum(1, keepdim=True) - s_i))
            if record:
                trains[0].append(pre)
                trains[1].append(increment)
                trains[2].append(s_e)
        if record:
            return counts, tuple(torch.stack(t) for t in trains)
        return counts, None

    @torch.no_grad()
    def respond(self, x: Tensor, adapt: bool, record: bool):
        """Present ``x``, again at a higher rate for images with fewer than ``min_spikes`` spikes.

        Returns the spike counts of each image's last presentation and, with
        ``record``, that presentation's (time, batch, ·) trains. On an accelerator
        every repeat presents the whole batch and keeps the images still below
        ``min_spikes`` (no read of the device to find them).
        """
        counts, trains = self.present(x, self.max_rate_hz, adapt, record)
        if on_accelerator(x.device):
            rate = self.max_rate_hz
            for presentation in range(1, self.max_presentations):
                rate += self.rate_step_hz
                pending = counts.sum(1) < self.min_spikes
                again, again_trains = self.present(x, rate, adapt, record, presentation)
                counts = torch.where(pending[:, None], again, counts)
                if record:
                    trains = tuple(
                        torch.where(pending[None, :, None], new, kept)
                        for kept, new in zip(trains, again_trains, strict=True)
                    )
            return counts, trains
        pending = torch.nonzero(counts.sum(1) < self.min_spikes).flatten()
        rate = self.max_rate_hz
        for presentation in range(1, self.max_presentations):
            if len(pending) == 0:
                break
            rate += self.rate_step_hz
            again, again_trains = self.present(x[pending], rate, adapt, record, presentation)
            counts[pending] = again
            if record:
                for kept, new in zip(trains, again_trains, strict=True):
                    kept[:, pending] = new
            pending = pending[again.sum(1) < self.min_spikes]
        return counts, trains

    def forward(self, x: Tensor) -> Tensor:
        """Per-class scores of a batch of images (thresholds adapt within a presentation in training mode)."""
        layer = self.synapses
        record = layer.recording
        counts, trains = self.respond(x, adapt=self.training, record=record)
        if record:
            for pre, drive, post in zip(*trains, strict=True):
                layer.record_step(pre, drive, post)
        return self.scores(counts)


class CompetitiveSpikingNetwork(Architecture):
    """Diehl & Cook (2015)'s network: Poisson input, excitatory LIF with adaptive thresholds, lateral inhibition."""

    name = "snn-competitive"
    description = (
        "Diehl & Cook 2015: Poisson input -> excitatory LIF neurons with adaptive thresholds and lateral "
        "inhibition; logits from neuron-to-class assignments"
    )
    capabilities = frozenset({"signals", "time", ASSIGNED_READOUT})
    defaults = {
        "neurons": Hyperparameter(400, CODE + ": n_e = 400 (the README's ~89% network)", minimum=1),
        "dt": Hyperparameter(0.5, CODE + ": dt = 0.5 ms", minimum=0.0, exclusive_minimum=True),
        "presentation_ms": Hyperparameter(350.0, CODE + ": single_example_time = 0.35 s", minimum=0.0, exclusive_minimum=True),
        "max_rate_hz": Hyperparameter(
            63.75, CODE + ": rate = pixel / 8 * intensity, intensity 2, so 255 / 4 = 63.75 Hz (also the paper)",
            minimum=0.0, exclusive_minimum=True,
        ),
        "rate_step_hz": Hyperparameter(
            31.875, CODE + ": input_intensity += 1 after a presentation with fewer than 5 spikes (255 / 8 Hz)",
            minimum=0.0,
        ),
        "min_spikes": Hyperparameter(5, CODE + ": fewer than 5 excitatory spikes -> present again", minimum=0),
        "max_presentations": Hyperparameter(
            5, "cap on the repeat loop (unbounded in the code): at most 4 brighter repeats", minimum=1
        ),
        "excitatory_to_inhibitory": Hyperparameter(10.4, CODE + " (random_conn_generator): weight['ei'] = 10.4"),
        "inhibitory_to_excitatory": Hyperparameter(17.0, CODE + " (random_conn_generator): weight['ie'] = 17.0"),
        "theta_plus": Hyperparameter(0.05, CODE + ": theta_plus_e = 0.05 mV per spike", minimum=0.0),
        "initial_weight_scale": Hyperparameter(
            0.3, CODE + " (random_conn_generator): weight['ee_input'] = 0.3, w = 0.3 (U(0,1) + 0.01)", minimum=0.0
        ),
    }
    profile_overrides = {
        "smoke": {"neurons": 25, "presentation_ms": 100.0},
        "ci": {"neurons": 100},
    }

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Draw the input weights (and the encoding seed) from ``generator``; thresholds start at 20 mV."""
        neurons = int(self.config["neurons"])
        layer = InputSynapses("fc1", input_size, neurons, float(self.config["initial_weight_scale"]), generator)
        encoding_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        module = CompetitiveSpikingModule(layer, num_classes, self.config, encoding_seed)
        return Network(module=module, layers=[layer], architecture=self)


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register Diehl & Cook's competitive spiking network."""
    return [CompetitiveSpikingNetwork]


@hookimpl
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """A rule that does not keep the neuron-to-class assignments leaves every logit at 0."""
    if not isinstance(architecture, CompetitiveSpikingNetwork):
        return None
    if ASSIGNED_READOUT in set(getattr(rule, "requires", ())):
        return None
    return (
        f"architecture {architecture.name!r} reads its classes out through neuron-to-class "
        f"assignments that only a rule declaring {ASSIGNED_READOUT!r} "
        f"({capabilities.get(ASSIGNED_READOUT, 'undeclared')}) keeps; under rule {rule.name!r} no neuron "
        "is ever assigned, every logit stays 0 and the prediction is a constant class"
    )
