"""The three plugin interfaces: ``Architecture``, ``LearningRule`` and ``Task``.

They keep rules independent of architectures. An architecture builds a plain
``nn.Module`` and exposes its *plastic layers* (:class:`biobench.layers.PlasticLayer`)
together with a set of *capabilities* (what its layers can give a rule). A rule
declares the capabilities it *requires*; a pairing whose requirements are not met
is declared unsupported through the ``biobench_pairing_unsupported`` hook, never
by a list in the core.

Capabilities (strings, so third parties can add their own):

``differentiable``
    The loss is differentiable end to end with autograd (for spiking nets: through
    a surrogate gradient), so backprop and the harness's reference gradient exist.
``feedback``
    Every plastic layer honours ``layer.feedback``: a function that replaces the
    gradient sent to the layer's input (the transported weights of backprop) by
    another one, e.g. a fixed random matrix. The layer's own parameters still get
    their local gradient ``g_out x_in^T``.
``node_noise``
    Every plastic layer adds ``layer.drive_noise`` (when set) to its synaptic drive.
``signals``
    ``Network.forward_with_signals`` records, per plastic layer, the pre-synaptic
    activity, the synaptic drive and the post-synaptic activity.
``rate``
    Post-synaptic activity is a static elementwise function of the drive,
    ``post = f(drive)``, and ``layer.activation_derivative(drive)`` returns ``f'``.
``dense``
    Every plastic layer's ``weight`` is a dense synaptic matrix, shape (out, in),
    with ``drive = pre @ weight.T + bias``.
``time``
    Spiking network: signals carry a leading time dimension.

The sign convention of every update is the *descent* one: a rule writes into
``param.grad`` the quantity that a torch optimiser subtracts (for backprop, the
gradient of the loss). The harness measures rules by reading those ``.grad``
tensors on the same weights and batch as the reference gradient.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from biobench.layers import LayerSignals, PlasticLayer

LossFn = Callable[[Tensor, Tensor], Tensor]

KNOWN_CAPABILITIES: dict[str, str] = {
    "differentiable": "an autograd (or surrogate) gradient of the loss",
    "feedback": "layers whose input gradient a rule can reroute through feedback weights",
    "node_noise": "layers that add noise to their synaptic drive",
    "signals": "recorded pre-synaptic, drive and post-synaptic signals per layer",
    "rate": "static elementwise activations with a known derivative",
    "dense": "dense synaptic weight matrices (out, in)",
    "time": "spiking dynamics over time steps",
}


@dataclass(frozen=True)
class Hyperparameter:
    """A default hyper-parameter value with the source that justifies it."""

    value: Any
    source: str


@dataclass
class Network:
    """A built network: the plain module, its plastic layers and its architecture."""

    module: nn.Module
    layers: list[PlasticLayer]
    architecture: Architecture

    def __call__(self, x: Tensor) -> Tensor:
        """Return the output logits for a batch of inputs."""
        return self.architecture.forward(self.module, x)

    def forward_with_signals(self, x: Tensor) -> tuple[Tensor, list[LayerSignals]]:
        """Return logits and the recorded signals of every plastic layer, in layer order."""
        for layer in self.layers:
            layer.start_recording()
        try:
            logits = self(x)
        finally:
            signals = [layer.stop_recording() for layer in self.layers]
        return logits, signals

    @contextmanager
    def plain(self) -> Iterator[Network]:
        """Temporarily remove every rule override (feedback, drive noise): true backprop."""
        saved = [
            (layer, layer.feedback, layer.drive_noise)
            for layer in self.layers
            if layer.feedback is not None or layer.drive_noise is not None
        ]
        for layer, _, _ in saved:  # only layers that have an override: setting attributes is not free
            layer.feedback = None
            layer.drive_noise = None
        try:
            yield self
        finally:
            for layer, feedback, noise in saved:
                layer.feedback = feedback
                layer.drive_noise = noise

    def plastic_parameters(self) -> list[nn.Parameter]:
        """All parameters of the plastic layers, in layer order."""
        return [p for layer in self.layers for p in layer.parameters()]

    def parameter_count(self) -> int:
        """Number of trainable scalar parameters of the network module."""
        return sum(p.numel() for p in self.module.parameters() if p.requires_grad)


def accumulate_grad(param: Tensor, update: Tensor) -> None:
    """Add ``update`` to ``param.grad`` (a copy of it when ``.grad`` is absent).

    The one way rules write into ``.grad``: ``compute_update`` may only accumulate,
    so several contributions (layers, time steps, pathways) add up.
    """
    if param.grad is None:
        param.grad = update.clone()
    else:
        param.grad.add_(update)


class _Plugin:
    """Common metadata of all plugin objects."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Default configuration; each value a Hyperparameter naming its source.
    defaults: ClassVar[dict[str, Hyperparameter]] = {}

    def __init__(self, **overrides: Any) -> None:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} got unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        self.config: dict[str, Any] = {k: h.value for k, h in self.defaults.items()}
        self.config.update(overrides)


class Architecture(_Plugin, abc.ABC):
    """Builds a network and exposes its plastic layers and capabilities."""

    #: Capabilities this architecture provides (see the module docstring).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Per-profile configuration overrides, e.g. a smaller width in ``ci``.
    profile_overrides: ClassVar[dict[str, dict[str, Any]]] = {}

    @abc.abstractmethod
    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build a freshly initialised network from ``self.config`` using ``generator``."""

    def forward(self, module: nn.Module, x: Tensor) -> Tensor:
        """Map a batch of flattened inputs in [0, 1] to class logits (spiking nets encode here)."""
        return module(x)


class LearningRule(nn.Module, abc.ABC):
    """Turns a batch into parameter updates written into ``.grad`` (descent convention).

    A rule is an ``nn.Module`` so that its own state (feedback matrices, traces)
    moves and saves with the model. It is bound to one built network per run.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: Paper(s) the rule implements.
    citation: ClassVar[str] = ""
    #: Capabilities the architecture must provide.
    requires: ClassVar[frozenset[str]] = frozenset()
    #: Whether the rule uses the forward weights to carry errors backwards.
    weight_transport: ClassVar[bool]
    #: Whether the rule broadcasts an error signal computed at the output.
    global_error: ClassVar[bool]
    #: Whether this rule is the harness's gradient reference (backprop / BPTT).
    is_reference: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Hyperparameter]] = {}

    def __init__(self, **overrides: Any) -> None:
        nn.Module.__init__(self)
        _Plugin.__init__(self, **overrides)
        self._network: Network | None = None

    @property
    def network(self) -> Network:
        """The network this rule is bound to."""
        if self._network is None:
            raise RuntimeError(f"rule {self.name!r} is not bound to a network; call bind() first")
        return self._network

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Attach to a built network and create the rule's own state (draws from ``generator``)."""
        self._network = network

    @abc.abstractmethod
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write the update for batch ``(x, y)`` into ``.grad``; return (loss, logits), detached.

        The loss is the task loss of the current weights on this batch. The method
        must leave every weight as it found it (optimisers apply the update) and
        may only accumulate into ``.grad``, which the caller has zeroed.
        """

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates: the network's and the rule's own."""
        own = [p for p in self.parameters() if p.requires_grad]
        return list(self.network.module.parameters()) + own

    def configure_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser that applies the update; Adam with ``config['lr']`` by default."""
        return torch.optim.Adam(params, lr=float(self.config.get("lr", 1e-3)))

    def after_step(self) -> None:
        """Called after the optimiser step (e.g. to renormalise weights); no-op by default."""

    def feedback_weights(self) -> dict[str, Tensor]:
        """Feedback matrices by plastic-layer name, shape ``(layer.out_features, layer.in_features)``.

        The harness reads them to measure alignment with the forward weights; rules
        without a feedback pathway return an empty dict. For direct feedback
        alignment the matrix maps the output error to the layer's output units and
        has shape ``(num_classes, layer.out_features)``.
        """
        return {}

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


@dataclass
class TaskData:
    """A task's splits as in-memory tensors: inputs float32 in [0, 1], flattened; labels int64."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    info: dict[str, Any] = field(default_factory=dict)


class Task(_Plugin, abc.ABC):
    """A supervised classification dataset with fixed splits."""

    num_classes: ClassVar[int]
    input_size: ClassVar[int]

    @abc.abstractmethod
    def load(self, data_dir: str | None) -> TaskData:
        """Load all splits into memory from ``data_dir`` (fetching them if allowed)."""

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """The task loss, averaged over the batch: cross-entropy by default."""
        return torch.nn.functional.cross_entropy(logits, y)
