"""One-vs-rest extension of Gupta's STDP-derived associative rule to several output units (not in Gupta 2020).

Gupta (2020) trains one output neuron on binary tasks (rule ``stdp_associative``)
and does not address several classes ("We are not stressing on multi-class
classification problems", section 5). This rule is this benchmark's extension: one
output neuron per class, each a one-vs-rest neuron, and one fixed hidden sign table
per class. The rule needs units whose activities are firing rates in [0, 1]. Architectures say
so with the capability ``bounded_rate`` (declared by ``biobench_plugins.capabilities.bounded_rate``):
every hidden plastic layer's
post-synaptic activity lies in [0, 1] (e.g. sigmoid units), and the output layer's
logits are the drives of sigmoid output units, whose rates are ``sigmoid(logits)``.
``mlp-sigmoid`` (784-32-16-out sigmoid, the paper's network) provides it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from biobench import (
    Hyperparameter,
    LearningRule,
    LossFn,
    Network,
    accumulate_grad,
    balanced_signs,
    gupta_stdp_change,
    hookimpl,
)

BOUNDED_RATE = "bounded_rate"
#: Elements of the (batch, out, in) tensor of per-example synapse updates computed at once.
CHUNK_ELEMENTS = 4_000_000


class StdpAssociativeMulticlass(LearningRule):
    """Gupta's rule extended one-vs-rest to several output units: this benchmark's extension, not the paper's.

    Citation of the rule it extends: Gupta, "A More Biologically Plausible Local
    Learning Rule for ANNs", arXiv:2011.12012 (2020), eq. 3. What is Gupta's and what is not:

    Unit activities are firing rates in [0, 1]; with ``x`` the pre-synaptic and
    ``p`` the post-synaptic rate of a synapse onto neuron ``k`` (eq. 3):

        dW = +eta Z_k x^3 p (x - p) / ((2p - x)^2 + 1e-9)

    ``Z_k = +/-1`` is the neuron's associativity. Gupta's (eq. 3, the update, and the
    binary scheme): one output neuron with ``Z = +1`` for ``y = 1`` and ``-1`` for
    ``y = 0``, hidden signs fixed and balanced, flipped for the other label. The
    extension (not in the paper): output neuron ``k`` takes ``+1`` if ``k`` is the
    target class and ``-1`` otherwise (a one-vs-rest neuron per class, argmax
    readout); each hidden neuron has one fixed associativity per class,
    ``Z_{k,c}`` (a balanced random sign per class and layer, drawn independently
    for each class), used for examples of class ``c``. With two classes the tables
    are drawn as ``Z_{k,0} = -Z_{k,1}``, so a two-unit binary head is the paper's
    hidden scheme with two mirror-image output neurons. The updates are averaged
    over the batch and given to Adam in place of the negative gradient (lr 1e-3,
    batch 100, as in the paper). Biases have no update and keep their initial
    values. The output rates are ``sigmoid(logits)``.

    Dynamics worth knowing when reading results: with ``Z = +1`` a neuron's rate
    settles where ``p = x`` (its inputs' rates); with ``Z = -1`` the rate is pushed
    away from ``x`` in both directions, towards 0 when ``p < x`` and towards 1 when
    ``p > x``. An output unit that starts above its inputs' rates can therefore end
    up firing most for the examples it should not associate with.
    """

    name = "stdp_associative_multiclass"
    description = (
        "One-vs-rest extension of Gupta's STDP-derived rule to one output unit per class "
        "(not in Gupta 2020)"
    )
    citation = (
        "Gupta, A More Biologically Plausible Local Learning Rule for ANNs "
        "(arXiv:2011.12012, 2020)"
    )
    family = "spike timing"
    requires = frozenset({"signals", "dense", "rate", BOUNDED_RATE})
    weight_transport = False
    global_error = False
    optimizer = {
        "lr": Hyperparameter(1e-3, "Gupta (2020), section 3: Adam, lr=1e-3 (batch size 100 on MNIST)"),
    }
    defaults = {
        "epsilon": Hyperparameter(1e-9, "Gupta (2020), eq. 3: term added to the denominator"),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Draw the fixed per-class associativities of every hidden neuron."""
        super().bind(network, generator)
        layers = network.layers
        self.num_classes = layers[-1].out_features
        if self.num_classes < 2:
            raise ValueError(
                f"rule {self.name!r} needs one output unit per class; with one output unit use "
                "Gupta's binary rule 'stdp_associative'"
            )
        self._table_of: dict[str, str] = {}
        for index, layer in enumerate(layers[:-1]):
            table = self.draw_associativities(layer.out_features, self.num_classes, generator)
            buffer_name = f"associativity_{index}"
            self.register_buffer(buffer_name, table)
            self._table_of[layer.layer_name] = buffer_name

    @staticmethod
    def draw_associativities(units: int, num_classes: int, generator: torch.Generator) -> Tensor:
        """(num_classes, units) signs, balanced per class; rows negated pairs when two classes."""
        if num_classes == 2:
            positive = balanced_signs(units, generator)
            return torch.stack([-positive, positive])
        return torch.stack([balanced_signs(units, generator) for _ in range(num_classes)])

    def associativities(self) -> dict[str, Tensor]:
        """The fixed (num_classes, out_features) associativity table of each hidden layer."""
        return {name: getattr(self, buffer).clone() for name, buffer in self._table_of.items()}

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write ``-(1/B) sum_n Z x^3 p (x - p) / ((2p - x)^2 + eps)`` into each weight's ``.grad``."""
        epsilon = float(self.config["epsilon"])
        layers = self.network.layers
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        batch = len(y)
        output_z = 2.0 * torch.nn.functional.one_hot(y, self.num_classes).to(logits.dtype) - 1.0
        for index, (layer, signal) in enumerate(zip(layers, signals, strict=True)):
            if signal is None or signal.time_major:
                raise ValueError(f"layer {layer.layer_name!r} gives no static rates")
            if index == len(layers) - 1:
                post = torch.sigmoid(signal.drive)
                z = output_z
            else:
                post = signal.post
                z = getattr(self, self._table_of[layer.layer_name])[y]
            update = torch.zeros_like(layer.weight)
            chunk = max(1, CHUNK_ELEMENTS // (layer.out_features * layer.in_features))
            for start in range(0, batch, chunk):
                stop = start + chunk
                change = gupta_stdp_change(signal.pre[start:stop], post[start:stop], epsilon)
                update += torch.einsum("bo,boi->oi", z[start:stop], change)
            accumulate_grad(layer.weight, -update / batch)
        return loss.detach(), logits.detach()


@hookimpl
def biobench_pairing_unsupported(architecture: Any, rule: type[Any], task: Any) -> str | None:
    """The rule needs firing rates in [0, 1] and one output unit per class: say so precisely."""
    if not (isinstance(rule, type) and issubclass(rule, StdpAssociativeMulticlass)):
        return None
    if BOUNDED_RATE in architecture.capabilities:
        if getattr(task, "output_size", 2) == 1:
            return (
                f"rule {rule.name!r} needs one output unit per class; task {task.name!r} has one "
                "output unit: use Gupta's binary rule 'stdp_associative'"
            )
        return None
    activation = getattr(architecture, "config", {}).get("activation")
    detail = f" (its activation is {activation!r})" if activation is not None else ""
    return (
        f"rule {rule.name!r} needs unit activities that are firing rates in [0, 1] (sigmoid "
        f"units, capability {BOUNDED_RATE!r}); architecture {architecture.name!r}{detail} does "
        f"not provide them; use an architecture that declares it, e.g. 'mlp-sigmoid'"
    )


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register the one-vs-rest extension of Gupta's rule."""
    return [StdpAssociativeMulticlass]
