"""Layered continuous Hopfield network: the energy-based model of equilibrium propagation.

The network of Scellier & Bengio (2017) in the discrete-time fixed-point form of Ernoult
et al. (2019) and Laborieux et al. (2021). The input ``x = s_0`` is clamped; the layers
``s_1 .. s_L`` are free, ``s_L`` the output. One dense matrix ``W_l`` (a
:class:`biobench.PlasticLinear`, shape (out, in)) couples ``s_{l-1}`` and ``s_l`` in both
directions. The dynamics are the fixed-point iteration of the primitive function

    Phi(x, s) = sum_{l=1..L} s_l . (W_l s_{l-1} + b_l)                (summed over the batch)

with every layer updated at once from the previous state (synchronous steps):

    s_l <- rho( W_l s_{l-1} + b_l + W_{l+1}^T s_{l+1} )     hidden layers, l < L
    s_L <-      W_L s_{L-1} + b_L + nudge(s_L)              output layer (linear)

``rho`` is the hard sigmoid ``clip(u, 0, 1)`` of Scellier & Bengio (``activation``:
``hard_sigmoid``) or Laborieux et al.'s ``sigmoid(4 (u - 1/2))`` (``sigmoid``). The output
layer is linear and inside the energy, as in Laborieux et al.'s ``P_MLP`` with the
cross-entropy loss (``--loss cel``): its state is the logits. ``nudge`` is zero in the free
phase; equilibrium propagation adds ``-beta dl/ds_L`` there (the rule's business).

**Forward.** ``forward(x)`` is the free phase: ``free_steps`` steps from ``s = 0`` (states
reset for every batch, as in Laborieux et al.'s code), returning ``s_L`` as logits. The
bottom-up drive of the first layer, ``W_1 x + b_1``, is computed once per relaxation.

**Reference gradient.** The relaxation is made of plain differentiable torch operations,
so the harness's reference gradient (``differentiable``) is autograd's gradient of the task
loss of ``s_L`` after the ``free_steps`` steps from zero, backpropagated through all of them
(backprop through time on the unrolled relaxation, the comparison of Ernoult et al. 2019);
when the free phase has converged it equals the gradient at the fixed point (implicit
differentiation). The hard sigmoid passes no gradient where a unit is clipped.

**Capabilities.** ``energy_based`` (``module.zero_state``, ``relax``, ``primitive``,
``free_steps``; see ``biobench_plugins.capabilities.energy_based``), ``differentiable``,
``dense`` and ``signals``: while recording, each layer records the *final* free state once,
``pre = s_{l-1}``, ``drive = W_l s_{l-1} + b_l`` (its bottom-up synaptic drive) and
``post = s_l``. Not ``rate`` (``s_l`` also depends on the layer above), not ``feedback``
(there is no backward pass whose transported matrix a feedback function could replace: the
top-down path is ``W_{l+1}^T`` inside the forward dynamics) and not ``node_noise``.

**Budget.** The profiles' own (``ci``: 3 epochs on all 55,000 training images, as for the
MLP): every forward pass is ``free_steps`` iterations, so a backprop step through the relaxation
costs about as much as equilibrium propagation's three phases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import Architecture, Hyperparameter, IntRange, Network, PlasticLinear, hookimpl

#: Capability: relaxation to a fixed point (declared by ``biobench_plugins.capabilities.energy_based``).
ENERGY_BASED = "energy_based"

#: A nudging force: the output layer's state -> what is added to its net input.
Nudge = Callable[[Tensor], Tensor]


def hard_sigmoid(u: Tensor) -> Tensor:
    """``clip(u, 0, 1)`` (Scellier & Bengio 2017)."""
    return u.clamp(0.0, 1.0)


def steep_sigmoid(u: Tensor) -> Tensor:
    """``1 / (1 + exp(-4 (u - 1/2)))`` (Laborieux et al. 2021, ``mysig``)."""
    return torch.sigmoid(4.0 * (u - 0.5))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "hard_sigmoid": hard_sigmoid,
    "sigmoid": steep_sigmoid,
}


class HopfieldLayer(PlasticLinear):
    """The symmetric synapses between two layers, used in both directions.

    ``layer(s_below)`` is the bottom-up drive ``W s_below + b``, the layer's output;
    ``layer.top_down(s_above)`` the top-down drive ``W^T s_above`` through the same synapses.
    Both are forward calls of the layer, so forward hooks that count synaptic operations see
    each of them; a top-down call returns its drive inside a 1-tuple, so that hooks reading a
    layer's *output* (the gradient reaching it) see the bottom-up drive only. Recording is
    explicit (:meth:`record_state`): the final state of a relaxation, once.
    """

    def __init__(
        self, name: str, in_features: int, out_features: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(name, in_features, out_features, activation=None, generator=generator)
        self._transposed = False

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor]:
        """``x W^T + b`` (bottom-up), or ``(x W,)`` inside :meth:`top_down`."""
        if self._transposed:
            return (x @ self.weight,)
        return F.linear(x, self.weight, self.bias)

    def top_down(self, x: Tensor) -> Tensor:
        """The drive ``x W`` that the layer above (state ``x``, shape (batch, out)) sends down."""
        self._transposed = True
        try:
            (drive,) = self(x)
        finally:
            self._transposed = False
        return drive

    @torch.no_grad()
    def synaptic_operations(self, pre: Tensor) -> tuple[float, float, bool]:
        """Operations of one call: bottom-up as a dense layer; top-down from the ``out`` side."""
        if not self._transposed:
            return super().synaptic_operations(pre)
        flat = pre.detach().reshape(-1, pre.shape[-1])
        fan_out = (self.weight.detach() != 0).sum(1).to(torch.float64)  # (out,): synapses to the layer below
        active = (flat != 0).sum(0).to(torch.float64)
        dense = float(flat.shape[0]) * self.in_features * self.out_features
        binary = bool(((flat == 0) | (flat == 1) | (flat == -1)).all())
        return dense, float(active @ fan_out), binary

    @property
    def recording(self) -> bool:
        """Whether signals are being recorded."""
        return self._recording

    def record_state(self, pre: Tensor, drive: Tensor, post: Tensor) -> None:
        """Record one (pre, drive, post) triple of the relaxed state."""
        self._record(pre, drive, post)


class LayeredHopfieldNetwork(nn.Module):
    """The layers and the relaxation dynamics (see the module docstring)."""

    def __init__(self, layers: list[HopfieldLayer], activation: str, free_steps: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.activation = activation
        self.rho = ACTIVATIONS[activation]
        self.free_steps = free_steps

    def zero_state(self, x: Tensor) -> list[Tensor]:
        """All free layers at 0 for the batch ``x``."""
        return [x.new_zeros(x.shape[0], layer.out_features) for layer in self.layers]

    def step(self, input_drive: Tensor, state: list[Tensor], nudge: Nudge | None = None) -> list[Tensor]:
        """One synchronous step of every layer from ``state``; ``input_drive`` is ``W_1 x + b_1``."""
        last = len(self.layers) - 1
        new = []
        for index, layer in enumerate(self.layers):
            net = input_drive if index == 0 else layer(state[index - 1])
            if index < last:
                new.append(self.rho(net + self.layers[index + 1].top_down(state[index + 1])))
            else:
                new.append(net if nudge is None else net + nudge(state[index]))
        return new

    def relax(self, x: Tensor, state: list[Tensor], steps: int, nudge: Nudge | None = None) -> list[Tensor]:
        """``steps`` synchronous steps from ``state`` with ``nudge`` on the output layer."""
        input_drive = self.layers[0](x)
        for _ in range(steps):
            state = self.step(input_drive, state, nudge)
        return state

    def primitive(self, x: Tensor, state: list[Tensor]) -> Tensor:
        """``Phi(x, s) = sum_l s_l . (W_l s_{l-1} + b_l)``, summed over the batch."""
        total = x.new_zeros(())
        for index, layer in enumerate(self.layers):
            pre = x if index == 0 else state[index - 1]
            total = total + (state[index] * F.linear(pre, layer.weight, layer.bias)).sum()
        return total

    def forward(self, x: Tensor) -> Tensor:
        """The free phase from zero; returns the output layer's state (the logits)."""
        state = self.relax(x, self.zero_state(x), self.free_steps)
        if any(layer.recording for layer in self.layers):
            with torch.no_grad():
                for index, layer in enumerate(self.layers):
                    pre = x if index == 0 else state[index - 1]
                    layer.record_state(pre, F.linear(pre, layer.weight, layer.bias), state[index])
        return state[-1]


class HopfieldNetwork(Architecture):
    """Layered continuous Hopfield network with a linear output layer, relaxed to a fixed point."""

    name = "hopfield"
    description = "Layered Hopfield network relaxed to a fixed point (equilibrium propagation's model), 784 -> 256 -> 10"
    capabilities = frozenset({"differentiable", "dense", "signals", ENERGY_BASED})
    defaults = {
        "hidden": Hyperparameter(
            [256], "the width of the biobench MLP (Scellier & Bengio 2017's net1 has 500 units)"
        ),
        "activation": Hyperparameter(
            "hard_sigmoid",
            "rho = clip(u, 0, 1): Scellier & Bengio 2017 (model.py of their code); 'sigmoid' is "
            "Laborieux et al. 2021's sigmoid(4(u - 1/2))",
            choices=tuple(ACTIVATIONS),
        ),
        "free_steps": Hyperparameter(
            20,
            "free-phase iterations n_it_neg = 20 of Scellier & Bengio 2017's net1 (train_model.py)",
            minimum=1,
            search=IntRange(10, 60),
        ),
    }

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build the layers with PyTorch's default initialisation (Laborieux et al.'s) from ``generator``."""
        hidden = [int(h) for h in self.config["hidden"]]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        sizes = [input_size, *hidden, num_classes]
        layers = [
            HopfieldLayer(f"fc{i + 1}", sizes[i], sizes[i + 1], generator=generator)
            for i in range(len(sizes) - 1)
        ]
        module = LayeredHopfieldNetwork(layers, self.config["activation"], int(self.config["free_steps"]))
        return Network(module=module, layers=list(layers), architecture=self)


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the layered Hopfield network."""
    return [HopfieldNetwork]
