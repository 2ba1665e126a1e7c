"""An optimiser for rules whose plasticity step is exact on some parameters and optimised on others.

Competitive Hebbian rules (Krotov & Hopfield 2019, SoftHebb) change their hidden
weights by a plasticity rule with its own step size, ``W <- W + eta dW``, while a
read-out layer is trained by a supervised rule through the run's optimiser (Adam in
the papers). :class:`PlasticityOptimizer` does both in one ``torch.optim.Optimizer``,
so the harness's training loop, its learning-rate schedules and its measurements
treat such a rule like any other: the rule writes ``-dW`` into ``.grad`` of a plastic
parameter (descent convention) and ``eta`` is that parameter group's ``lr``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class PlasticityOptimizer(torch.optim.Optimizer):
    """Steps ``plastic`` parameters by exactly ``-lr * grad`` and every other parameter with ``inner``.

    The plastic group is plain SGD without momentum or weight decay: a rule that
    writes ``-dW`` into ``.grad`` gets ``W <- W + lr * dW``. The inner optimiser's
    parameter groups are shared, not copied, so a learning-rate schedule built on
    this optimiser scales every group, the plastic one included, by the same factor.
    """

    def __init__(self, plastic: list[nn.Parameter], lr: float, inner: torch.optim.Optimizer) -> None:
        if lr <= 0:
            raise ValueError(f"the plastic group's step size must be positive, got {lr}")
        super().__init__([{"params": list(plastic), "lr": float(lr), "plasticity": True}], {"lr": float(lr)})
        self.inner = inner
        self.param_groups.extend(inner.param_groups)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply ``p -= lr * p.grad`` to the plastic parameters, then step the inner optimiser."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if not group.get("plasticity", False):
                continue
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        self.inner.step()
        return loss
