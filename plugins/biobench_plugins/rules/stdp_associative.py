"""Gupta's STDP-derived associative rule on a binary task with one output neuron (Gupta 2020).

The rule needs units whose activities are firing rates in [0, 1]. Architectures say
so with the capability ``bounded_rate`` (declared by ``biobench_plugins.capabilities.bounded_rate``):
every hidden plastic layer's post-synaptic activity lies in [0, 1] (e.g. sigmoid
units), and the output layer's logits are the drives of sigmoid output units, whose
rates are ``sigmoid(logits)``. ``mlp-sigmoid`` (784-32-16-out sigmoid, the paper's
network) provides it. The task must ask for one output unit (``output_units=1``, the
default of the ``mnist-0vK`` digit-pair tasks); the one-vs-rest extension to several
output units is the separate rule ``stdp_associative_multiclass``.
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


class StdpAssociative(LearningRule):
    """STDP-derived associative rule (Gupta 2020): one output neuron, fixed hidden associativities.

    Citation: S. K. Gupta, "A More Biologically Plausible Local Learning Rule for
    ANNs", arXiv:2011.12012 (2020), sections 2-3 and appendix A.

    Unit activities are firing rates in [0, 1]. A rate is read as a spike time,
    ``T_pre ~ 1/x`` and ``T_post ~ 1/p``; the asymmetric STDP window of eq. 6 then
    gives, for the synapse from pre-synaptic unit ``i`` (rate ``x_i``) onto neuron
    ``k`` (rate ``p_k``), eq. 3 with the paper's ``epsilon = 1e-9`` in the
    denominator:

        dW_ki = +eta Z_k x_i^3 p_k (x_i - p_k) / ((2 p_k - x_i)^2 + epsilon)

    ``Z_k = +/-1`` is neuron ``k``'s associativity:

    * the one output neuron (rate ``sigmoid(logit)``): ``Z = 2y - 1``, i.e. +1 for
      label ``y = 1`` and -1 for ``y = 0`` (section 2);
    * hidden neurons: a sign ``z_k`` fixed at the start of training, an equal number
      of +1 and -1 per hidden layer (section 3), used for ``y = 1``; for ``y = 0``
      it flips, ``Z_k^0 = -Z_k^1`` (section 2), so ``Z_k = (2y - 1) z_k``. The only
      signal a neuron receives besides its own rates is whether the example is of
      the class the output associates with; no error is propagated.

    The change is averaged over the batch and given to Adam in place of the
    gradient ("we replaced the negative gradient with the STDP weight update rule in
    adam optimizer", section 3): ``.grad = -(1/B) sum_n dW_n / eta``, Adam lr 1e-3,
    batch 100. The prediction is ``y = 1`` when the output's logit is positive
    (rate > 1/2).

    Departures and choices the paper leaves open: biases exist in ``mlp-sigmoid``
    and keep their initial values (the paper names no bias and no update for it);
    the weights start from PyTorch's default initialisation (not stated in the
    paper); which digit of a pair is ``y = 1`` is not stated (the digit-pair tasks
    use the second digit); the number of epochs is not stated (Fig. 2 shows curves
    only); the batch mean (not the sum) is used, which only matters through Adam's
    epsilon. Behaviour worth knowing: with ``Z = +1`` a neuron's rate settles where
    ``p = x``; with ``Z = -1`` it is pushed away from its inputs' rates, and
    ``x = 2p`` is the rule's singular point, bounded only by ``epsilon``.

    **No published values.** The paper reports its MNIST pairs (0 vs 1 ... 0 vs 5)
    only as learning curves (Fig. 2, "the y-scale for all the plots shown are
    different") and says the accuracy is "not equivalent but is quite comparable"
    to backprop; its text has no number, so no ``PaperSetup`` is declared. The
    closest honest check is the comparison with backprop (binary cross-entropy) on
    the same 784-32-16-1 network, reported in the README.
    """

    name = "stdp_associative"
    description = (
        "Gupta 2020: STDP-derived local rule with fixed associativities on one output neuron "
        "(binary tasks); no error propagated"
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
        """Check the single output neuron and draw the fixed balanced signs of every hidden layer."""
        super().bind(network, generator)
        layers = network.layers
        if layers[-1].out_features != 1:
            raise ValueError(
                f"rule {self.name!r} trains one output neuron (Gupta 2020); the network has "
                f"{layers[-1].out_features} output units: use a task with output_units=1 or the rule "
                "'stdp_associative_multiclass'"
            )
        self._signs_of: dict[str, str] = {}
        for index, layer in enumerate(layers[:-1]):
            buffer_name = f"associativity_{index}"
            self.register_buffer(buffer_name, balanced_signs(layer.out_features, generator))
            self._signs_of[layer.layer_name] = buffer_name

    def associativities(self) -> dict[str, Tensor]:
        """Each hidden layer's fixed signs ``z_k`` (its associativities for ``y = 1``)."""
        return {name: getattr(self, buffer).clone() for name, buffer in self._signs_of.items()}

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Write ``-(1/B) sum_n Z x^3 p (x - p) / ((2p - x)^2 + eps)`` into each weight's ``.grad``."""
        epsilon = float(self.config["epsilon"])
        layers = self.network.layers
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        batch = len(y)
        label_sign = (2.0 * y.to(logits.dtype) - 1.0)[:, None]  # (B, 1): +1 for y = 1, -1 for y = 0
        for index, (layer, signal) in enumerate(zip(layers, signals, strict=True)):
            if signal is None or signal.time_major:
                raise ValueError(f"layer {layer.layer_name!r} gives no static rates")
            if index == len(layers) - 1:
                post = torch.sigmoid(signal.drive)
                z = label_sign
            else:
                post = signal.post
                z = label_sign * getattr(self, self._signs_of[layer.layer_name])[None, :]
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
    """Gupta's rule needs firing rates in [0, 1] and one output neuron: say so precisely."""
    if not (isinstance(rule, type) and issubclass(rule, StdpAssociative)):
        return None
    if BOUNDED_RATE not in architecture.capabilities:
        activation = getattr(architecture, "config", {}).get("activation")
        detail = f" (its activation is {activation!r})" if activation is not None else ""
        return (
            f"rule {rule.name!r} needs unit activities that are firing rates in [0, 1] (sigmoid "
            f"units, capability {BOUNDED_RATE!r}); architecture {architecture.name!r}{detail} does "
            f"not provide them; use an architecture that declares it, e.g. 'mlp-sigmoid'"
        )
    outputs = getattr(task, "output_size", None)
    if outputs is not None and outputs != 1:
        return (
            f"rule {rule.name!r} is Gupta (2020)'s binary rule on one output neuron; task "
            f"{task.name!r} asks for {outputs} output units: use a binary task with output_units=1 "
            "(e.g. 'mnist-0v1'), or the one-vs-rest extension 'stdp_associative_multiclass'"
        )
    return None


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register Gupta's STDP-derived associative rule."""
    return [StdpAssociative]
