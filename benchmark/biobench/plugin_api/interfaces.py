"""The three plugin interfaces: ``Architecture``, ``LearningRule`` and ``Task``.

They keep rules independent of architectures. An architecture builds a plain
``nn.Module`` and exposes its *plastic layers* (:class:`biobench.plugin_api.layers.PlasticLayer`)
together with a set of *capabilities* (what its layers can give a rule). A rule
declares the capabilities it *requires*; a pairing whose requirements are not met
is declared unsupported through the ``biobench_pairing_unsupported`` hook, never
by a list in the core.

Capabilities are names declared once (:mod:`biobench.plugin_api.capabilities`).

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

from biobench.plugin_api.hyperparameters import Hyperparameter, check_options
from biobench.plugin_api.layers import LayerSignals, PlasticLayer
from biobench.plugin_api.optimization import OptimizerSettings, build_optimizer
from biobench.plugin_api.outputs import step_outputs
from biobench.plugin_api.reproductions import PaperSetup

LossFn = Callable[[Tensor, Tensor], Tensor]

#: Rule families used to group and filter rules (``LearningRule.family``); a third-party rule may
#: name another one.
RULE_FAMILIES: dict[str, str] = {
    "reference": "exact gradient of the loss (backprop, or surrogate-gradient BPTT for spiking nets)",
    "feedback alignment": "backprop's local updates with the transported weights replaced by feedback weights",
    "target projection": "layer targets or errors projected directly from the output or the label",
    "target propagation": "layer targets propagated backwards through learned inverse mappings",
    "perturbation": "gradient estimates from the loss change under random perturbations",
    "hebbian": "updates from pre- and post-synaptic activity",
    "spike timing": "updates from the relative timing of pre- and post-synaptic spikes",
    "energy-based": "relaxation of an energy function to a fixed point, then a local update",
    "forward-only": "learning from forward passes alone, without a backward pass",
    "eligibility traces": "local eligibility traces combined with a broadcast learning signal",
    "other": "none of the above",
}

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

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters (the CPU for a network without any)."""
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

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


class PluginClass:
    """What every architecture, rule and task class declares (validated when it is registered)."""

    #: Unique name within its kind: lower-case letters, digits and ``_.-``.
    name: ClassVar[str]
    #: One line shown by ``biobench plugins``.
    description: ClassVar[str]
    #: Default configuration; each value a Hyperparameter naming its source.
    defaults: ClassVar[dict[str, Hyperparameter]] = {}
    #: Per-profile changes to the run's budget (keys of :data:`biobench.training.profiles.RUN_KEYS`,
    #: e.g. ``{"ci": {"train_subset": 10000}}``), documented in the plugin and stored in every
    #: record's config. When an architecture and a rule both set a key, the rule's wins.
    run_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Resources one run asks of a Ray cluster, e.g. ``{"num_cpus": 2, "num_gpus": 1}``; the larger
    #: request of the architecture and the rule is used. Empty: one CPU.
    resources: ClassVar[dict[str, float]] = {}
    #: Published experiments of this plugin's paper(s), re-run by ``biobench reproduce``.
    published_setups: ClassVar[tuple[PaperSetup, ...]] = ()


class _Plugin(PluginClass):
    """Configuration handling shared by architectures and tasks."""

    def __init__(self, **overrides: Any) -> None:
        self.config: dict[str, Any] = check_options(self.defaults, overrides, f"{type(self).__name__} ({self.name!r})")


class Architecture(_Plugin, abc.ABC):
    """Builds a network and exposes its plastic layers and capabilities."""

    #: Capabilities this architecture provides (names declared in :mod:`biobench.plugin_api.capabilities`
    #: or by a plugin's ``biobench_register_capabilities``).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Per-profile changes to this architecture's own options, e.g. ``{"ci": {"hidden": [32]}}``;
    #: ``--arch-option`` values win over them.
    profile_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Time bins of the task's input (:attr:`Task.input_steps`), set by the harness before
    #: :meth:`build`; architectures with the ``timed_input`` capability read their input as that many
    #: consecutive bins of ``input_size // input_steps`` features, one per time step.
    input_steps: int = 1

    @abc.abstractmethod
    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Build a freshly initialised network from ``self.config`` using ``generator``."""

    def forward(self, module: nn.Module, x: Tensor) -> Tensor:
        """Map a batch of flattened inputs in [0, 1] to class logits (spiking nets encode here)."""
        return module(x)


class LearningRule(nn.Module, PluginClass, abc.ABC):
    """Turns a batch into parameter updates written into ``.grad`` (descent convention).

    A rule is an ``nn.Module`` so that its own state (feedback matrices, traces)
    moves and saves with the model. It is bound to one built network per run.
    """

    #: Paper(s) the rule implements.
    citation: ClassVar[str] = ""
    #: The family of rules it belongs to (one of :data:`RULE_FAMILIES`), for grouping and filters.
    family: ClassVar[str] = "other"
    #: Capabilities the architecture must provide.
    requires: ClassVar[frozenset[str]] = frozenset()
    #: Whether the rule uses the forward weights to carry errors backwards.
    weight_transport: ClassVar[bool]
    #: Whether the rule broadcasts an error signal computed at the output.
    global_error: ClassVar[bool]
    #: Whether this rule is the harness's gradient reference (backprop / BPTT).
    is_reference: ClassVar[bool] = False
    #: The optimiser settings this rule uses unless the run overrides them, each with its source
    #: (keys of :data:`biobench.plugin_api.optimization.OPTIMIZER_OPTIONS`; the others keep the
    #: harness's defaults: Adam, step size 1e-3).
    optimizer: ClassVar[dict[str, Hyperparameter]] = {}

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

    def configure_optimizer(
        self, params: list[nn.Parameter], settings: OptimizerSettings | None = None
    ) -> torch.optim.Optimizer:
        """The optimiser that applies the update, from the run's ``settings`` (default: this rule's).

        Override to treat parameter groups differently (e.g. weight decay on some only).
        """
        return build_optimizer(params, settings or OptimizerSettings.resolve(self.optimizer))

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


#: The losses a task offers (option ``loss`` of the built-in tasks): what the network's outputs mean.
LOSSES: dict[str, str] = {
    "cross_entropy": "softmax cross-entropy on the output units (one per class)",
    "bce": "binary cross-entropy of sigmoid output units against one-hot targets (one unit per class), "
           "or against the label itself when the task has a single output unit",
    "mse": "half the squared error between sigmoid output units and one-hot targets, summed over units",
}


class Task(_Plugin, abc.ABC):
    """A supervised classification dataset with fixed splits, its output head and its loss.

    ``output_size`` is the number of output units the network must have: one per
    class by default; a binary task may use one unit (the label is whether it is
    on: its logit > 0). :meth:`loss` and :meth:`predict` follow ``config["loss"]``
    when the task declares that option (see :data:`LOSSES`), softmax cross-entropy
    and argmax otherwise.
    """

    num_classes: ClassVar[int]
    input_size: ClassVar[int]
    #: Time bins the flattened input holds: with ``F = input_size // input_steps`` features per bin,
    #: ``x[:, t*F:(t+1)*F]`` is bin ``t``. 1 for a static input; a task with more bins runs only on
    #: architectures with the ``timed_input`` capability (:attr:`Architecture.input_steps`).
    input_steps: ClassVar[int] = 1

    @property
    def output_size(self) -> int:
        """Number of output units the network needs (``num_classes`` unless the task says one)."""
        return 1 if self.config.get("output_units") == 1 else int(self.num_classes)

    @abc.abstractmethod
    def load(self, data_dir: str | None) -> TaskData:
        """Load all splits into memory from ``data_dir`` (fetching them if allowed)."""

    def data_available(self, data_dir: str | None) -> str | None:
        """None when the task's data is present or can be fetched, else why not (one message).

        The default loads the task (fetching missing files when allowed, which loaders
        cache per process) and returns the text of the ``DataError`` it raises.
        """
        from biobench.data.files import DataError

        try:
            self.load(data_dir)
        except DataError as exc:
            return str(exc)
        return None

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """The task loss of ``logits`` (batch, output_size) for labels ``y``, averaged over the batch.

        Logits that carry step outputs (:func:`biobench.with_step_outputs`) are scored at
        every time step, and the step losses summed or averaged as they say.
        """
        steps = step_outputs(logits)
        if steps is not None:
            per_step = [self.output_loss(values, y) for values in steps.values]
            total = per_step[0]
            for value in per_step[1:]:
                total = total + value
            return total if steps.reduction == "sum" else total / len(per_step)
        return self.output_loss(logits, y)

    def output_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """The task loss of one (batch, output_size) output, averaged over the batch (``config["loss"]``)."""
        kind = self.config.get("loss", "cross_entropy")
        F = torch.nn.functional
        if kind == "cross_entropy":
            if logits.shape[-1] == 1:
                raise ValueError("cross_entropy needs one output unit per class; use loss=bce with one unit")
            return F.cross_entropy(logits, y)
        target = y.to(logits.dtype).unsqueeze(-1) if logits.shape[-1] == 1 else F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        if kind == "bce":
            return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(y)
        if kind == "mse":
            return 0.5 * (torch.sigmoid(logits) - target).pow(2).sum() / len(y)
        raise ValueError(f"unknown loss {kind!r}; known: {', '.join(LOSSES)}")

    def predict(self, logits: Tensor) -> Tensor:
        """Predicted labels: the unit with the largest logit, or logit > 0 for a single output unit."""
        if logits.shape[-1] == 1:
            return (logits[..., 0] > 0).long()
        return logits.argmax(-1)
