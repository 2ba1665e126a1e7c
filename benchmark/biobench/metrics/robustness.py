"""Adversarial robustness: test accuracy under the fast gradient sign method (FGSM)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from biobench.metrics.base import (
    DEFAULT_SETTINGS,
    FRACTION,
    Column,
    Metric,
    MetricDefinition,
    MetricUndefined,
    Outcome,
    SweepFigure,
    fgsm_key,
    number,
)
from biobench.metrics.gradients import require_reference
from biobench.plugin_api.interfaces import Network, Task

#: The perturbation of the leaderboard's FGSM column, in units of 1/255.
LEADERBOARD_EPSILON_255 = 8


def fgsm_curve(metrics: dict[str, Any]) -> list[tuple[float, float]]:
    """``(epsilon, accuracy)`` pairs of a record's ``fgsm_acc``, epsilon in [0, 1] pixel units, sorted."""
    value = metrics.get("fgsm_acc")
    pairs: list[tuple[float, float]] = []
    if isinstance(value, dict):
        for key, acc in value.items():
            numerator, _, denominator = str(key).partition("/")
            try:
                eps = float(numerator) / float(denominator or 1)
            except (ValueError, ZeroDivisionError):
                continue
            if number(acc) is not None:
                pairs.append((eps, float(acc)))
    return sorted(pairs)


def fgsm_at(metrics: dict[str, Any], epsilon_255: int = LEADERBOARD_EPSILON_255) -> float | None:
    """FGSM accuracy at ``epsilon_255``/255 from a record's ``fgsm_acc``, or None."""
    value = metrics.get("fgsm_acc")
    return number(value.get(fgsm_key(epsilon_255))) if isinstance(value, dict) else None


def fgsm_drop_at(metrics: dict[str, Any], epsilon_255: int = LEADERBOARD_EPSILON_255) -> float | None:
    """Clean minus attacked accuracy at ``epsilon_255``/255 from a record's ``fgsm_drop``, or None."""
    value = metrics.get("fgsm_drop")
    return number(value.get(fgsm_key(epsilon_255))) if isinstance(value, dict) else None


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default), clipped to [0, 1]."""
    if n <= 0:
        raise ValueError("an interval needs at least one trial")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def input_gradient(network: Network, task: Task, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``dL/dx`` of the batch-mean task loss by autograd under ``network.plain()``, and the logits of ``x``."""
    require_reference(network)
    with network.plain(), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        logits = network(x)
        loss = task.loss(logits, y)
        if not loss.requires_grad:
            raise MetricUndefined("the task loss does not depend on the input through autograd")
        (grad,) = torch.autograd.grad(loss, [x], allow_unused=True)
    if grad is None:
        raise MetricUndefined("the task loss has no autograd gradient with respect to the input")
    if not torch.isfinite(grad).all():
        raise MetricUndefined("the input gradient contains NaN or infinity")
    return grad, logits.detach()


def fgsm_examples(x: Tensor, grad: Tensor, epsilon: float) -> Tensor:
    """``clip(x + epsilon * sign(grad), 0, 1)``: FGSM inputs that stay in the pixel range."""
    return (x + epsilon * grad.sign()).clamp(0.0, 1.0)


class FGSMAccuracy(Metric):
    """Test accuracy on FGSM adversarial examples at the harness's perturbation sizes."""

    definition = MetricDefinition(
        keys=("fgsm_acc", "fgsm_drop", "fgsm_ci95", "fgsm_examples"),
        measures=(
            "adversarial robustness: accuracy on inputs moved by ε in the direction of the sign of the "
            "loss gradient (Goodfellow et al. 2015); the `0/255` entry is the clean accuracy on the "
            "same examples, `fgsm_drop` the clean accuracy minus the attacked one, `fgsm_ci95` the 95% "
            "Wilson score interval of each accuracy"
        ),
        formula=(
            "x_adv = clip(x + ε · sign(∇ₓ L(f(x), y)), 0, 1); accuracy = mean[argmax f(x_adv) = y], "
            f"ε ∈ {{{', '.join(fgsm_key(e) for e in DEFAULT_SETTINGS.fgsm_epsilons_255)}}} (the keys); "
            "∇ₓ by autograd through `network.plain()` (the surrogate gradient for spiking nets) on the "
            "batch-mean task loss, network in eval mode; torch's generator is re-seeded before each "
            "pass, so a stochastic network (spike encoding) draws the same noise at every ε"
        ),
        sign="higher is more robust; ε = 0 equals the clean accuracy",
        eps="ε in units of the [0, 1] pixel range; no numerical epsilon",
        averaging=(
            f"over the first {DEFAULT_SETTINGS.fgsm_examples} test examples (fewer if the profile's "
            "test split is smaller; `fgsm_examples` says how many): at 2,000 examples the interval's half "
            "width is at most 2.2 points"
        ),
        unit="fraction correct, in [0, 1] (drop: in [−1, 1])",
        when="once, after the last epoch",
        null_when=(
            "the architecture lacks `differentiable` or the loss has no gradient with respect to "
            "the input, or training stopped early"
        ),
    )

    order = 50
    schemas = {
        "fgsm_acc": {"type": "object", "additionalProperties": FRACTION},
        "fgsm_drop": {"type": "object", "additionalProperties": {"type": "number", "minimum": -1, "maximum": 1}},
        "fgsm_ci95": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": FRACTION, "minItems": 2, "maxItems": 2},
        },
        "fgsm_examples": {"type": "integer", "minimum": 1},
    }
    columns = (
        Column(
            f"fgsm_drop_{LEADERBOARD_EPSILON_255}_255", f"FGSM drop {LEADERBOARD_EPSILON_255}/255 (pts)",
            f"clean accuracy minus accuracy under an FGSM perturbation of {LEADERBOARD_EPSILON_255}/255, on "
            "the same test examples (percentage points; lower is more robust)",
            fgsm_drop_at, order=60, digits=1, percent=True, tolerance=0.03, readme=True,
        ),
    )
    figures = (
        SweepFigure(
            "fgsm_acc", lambda m: [(255 * eps, acc) for eps, acc in fgsm_curve(m)], "fgsm", "robustness",
            "FGSM accuracy vs perturbation", "perturbation ε (×1/255)", "test accuracy under FGSM",
            "Mean over ok seeds; each ε attacks the trained network with its own gradient sign.",
            ylim=(0, 1),
        ),
    )

    def __init__(self, epsilons_255: tuple[int, ...], chunk: int = 500) -> None:
        self.epsilons_255, self.chunk = epsilons_255, chunk

    def compute(self, network: Network, task: Task, x: Tensor, y: Tensor, seed: int | None = None) -> Outcome:
        """Accuracy at every ε, keyed ``"k/255"``; the network is put in eval mode (caller restores).

        With ``seed``, torch's global generator is re-seeded before every forward pass
        of a chunk, so a stochastic network (e.g. spike encoding) sees the same noise
        at every ε. The caller restores the generator's state.
        """
        if len(x) == 0:
            raise MetricUndefined("no test examples")
        network.module.eval()
        correct = {eps: 0 for eps in self.epsilons_255}
        for start in range(0, len(x), self.chunk):
            xb, yb = x[start : start + self.chunk], y[start : start + self.chunk]
            if seed is not None:
                torch.manual_seed(seed + start)
            grad, clean_logits = input_gradient(network, task, xb, yb)
            with torch.no_grad(), network.plain():
                for eps in self.epsilons_255:
                    if eps == 0:  # x_adv = x: the logits of the gradient pass (same seed)
                        logits = clean_logits
                    else:
                        if seed is not None:
                            torch.manual_seed(seed + start)
                        logits = network(fgsm_examples(xb, grad, eps / 255.0))
                    correct[eps] += int((task.predict(logits) == yb).sum())
        n = len(x)
        accuracy = {fgsm_key(eps): correct[eps] / n for eps in self.epsilons_255}
        return Outcome({
            "fgsm_acc": accuracy,
            "fgsm_drop": {key: accuracy[fgsm_key(0)] - acc for key, acc in accuracy.items()} if 0 in self.epsilons_255 else {},
            "fgsm_ci95": {fgsm_key(eps): list(wilson_interval(correct[eps], n)) for eps in self.epsilons_255},
            "fgsm_examples": n,
        })
