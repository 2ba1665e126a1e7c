"""Capabilities: what an architecture's layers can give a learning rule, declared once by name.

An architecture lists the capabilities it *provides* (``Architecture.capabilities``);
a rule lists the ones it *requires* (``LearningRule.requires``). A pairing whose rule
requires a capability the architecture does not provide is unsupported, with the
capability's description in the reason.

Every capability name is declared exactly once: the harness's own below
(:data:`CORE_CAPABILITIES`), every other one by a plugin through the
``biobench_register_capabilities`` hook. The registry rejects, at load time and
naming the plugin, an architecture or rule that names a capability nobody declared,
so a typo cannot silently make a pairing "unsupported".

Core capabilities:

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
``timed_input``
    The architecture consumes a task's input bin by bin (``Task.input_steps`` bins of
    ``input_size // input_steps`` features, e.g. binned events), one bin per time step,
    as given: the harness sets ``Architecture.input_steps`` before ``build``. A task
    with ``input_steps > 1`` runs only on architectures that provide it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DIFFERENTIABLE = "differentiable"
FEEDBACK = "feedback"
NODE_NOISE = "node_noise"
SIGNALS = "signals"
RATE = "rate"
DENSE = "dense"
TIME = "time"
TIMED_INPUT = "timed_input"

#: The harness's own capabilities and what each promises.
CORE_CAPABILITIES: dict[str, str] = {
    DIFFERENTIABLE: "an autograd (or surrogate) gradient of the loss",
    FEEDBACK: "layers whose input gradient a rule can reroute through feedback weights",
    NODE_NOISE: "layers that add noise to their synaptic drive",
    SIGNALS: "recorded pre-synaptic, drive and post-synaptic signals per layer",
    RATE: "static elementwise activations with a known derivative",
    DENSE: "dense synaptic weight matrices (out, in)",
    TIME: "spiking dynamics over time steps",
    TIMED_INPUT: "reads an input of several time bins one bin per time step, as given",
}

#: Who declares the core capabilities (shown where a plugin would be named).
CORE_OWNER = "biobench"


@dataclass(frozen=True)
class Capability:
    """One declared capability: its name, what it promises and who declared it."""

    name: str
    description: str
    declared_by: str


class CapabilityError(ValueError):
    """A capability declared twice, or a declaration that is not a name and a description."""


class Capabilities(Mapping[str, Capability]):
    """The known capabilities by name: the core ones plus those plugins declare."""

    def __init__(self) -> None:
        self._known: dict[str, Capability] = {
            name: Capability(name, text, CORE_OWNER) for name, text in CORE_CAPABILITIES.items()
        }

    def __getitem__(self, name: str) -> Capability:
        return self._known[name]

    def __iter__(self):
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)

    def declare(self, name: object, description: object, declared_by: str) -> Capability:
        """Add a capability; a name declared before, or a malformed one, raises CapabilityError."""
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise CapabilityError(f"capability name {name!r} is not a non-empty string without spaces")
        if not isinstance(description, str) or not description.strip():
            raise CapabilityError(f"capability {name!r} has no description")
        existing = self._known.get(name)
        if existing is not None:
            raise CapabilityError(
                f"capability {name!r} is already declared by {existing.declared_by!r}; "
                "each capability is declared once"
            )
        capability = Capability(name, description.strip(), declared_by)
        self._known[name] = capability
        return capability

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names in ``names`` that no one declared, sorted."""
        return sorted(set(names) - set(self._known))

    def describe(self, name: str) -> str:
        """``name (what it promises)``, for messages."""
        known = self._known.get(name)
        return f"{name} ({known.description if known else 'undeclared'})"

    def descriptions(self) -> dict[str, str]:
        """Name -> description of every known capability."""
        return {name: c.description for name, c in self._known.items()}
