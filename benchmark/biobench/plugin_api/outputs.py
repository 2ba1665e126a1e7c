"""Logits that carry one output per time step, for a loss taken at every step.

A network's logits are one ``(batch, classes)`` tensor: what :meth:`Task.predict`
reads and, by default, what :meth:`Task.loss` scores. A network that runs in time
(a spiking network) may attach to its logits the outputs of every time step,
``(time, batch, classes)``, with :func:`with_step_outputs`. :meth:`Task.loss` then
scores every step and sums or averages over the steps,

    L = sum_t loss(outputs[t], y)      (reduction "sum")
    L = 1/T sum_t loss(outputs[t], y)  (reduction "mean")

as snntorch's tutorials train on the output membrane potential, while the
prediction still comes from the logits (e.g. the spike count). The step outputs
are an attribute of that logits tensor object: a copy, a slice or ``detach()``
does not carry them (``per_example_losses`` slices both). A loss that depends on
the step outputs does not depend on the logits themselves, so ``dL/dlogits`` is
undefined for such a network.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

#: How the per-step losses are combined.
STEP_REDUCTIONS = ("sum", "mean")

_ATTRIBUTE = "_biobench_step_outputs"


@dataclass(frozen=True)
class StepOutputs:
    """The outputs of every time step, ``(time, batch, classes)``, and how their losses combine."""

    values: Tensor
    reduction: str


def with_step_outputs(logits: Tensor, values: Tensor, reduction: str) -> Tensor:
    """Attach ``values`` (time, batch, classes) to ``logits`` (batch, classes) and return ``logits``."""
    if reduction not in STEP_REDUCTIONS:
        raise ValueError(f"unknown step reduction {reduction!r}; known: {', '.join(STEP_REDUCTIONS)}")
    if values.dim() != logits.dim() + 1 or tuple(values.shape[1:]) != tuple(logits.shape):
        raise ValueError(
            f"step outputs of shape {tuple(values.shape)} do not fit logits of shape {tuple(logits.shape)}"
        )
    setattr(logits, _ATTRIBUTE, StepOutputs(values, reduction))
    return logits


def step_outputs(logits: Tensor) -> StepOutputs | None:
    """The step outputs attached to ``logits``, or None."""
    return getattr(logits, _ATTRIBUTE, None)
