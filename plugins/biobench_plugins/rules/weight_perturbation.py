"""Weight perturbation (Werfel, Xie & Seung 2005): loss change under weight noise estimates the gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench import (
    WERFEL_2005,
    Hyperparameter,
    LearningRule,
    LogUniform,
    LossFn,
    Network,
    accumulate_grad,
    derived_generator,
    hookimpl,
)


class WeightPerturbation(LearningRule):
    """Weight perturbation (Werfel, Xie & Seung 2005).

    Every plastic parameter ``w`` is perturbed at once by ``xi ~ N(0, sigma^2 I)``;
    the change of the batch loss, correlated with the noise, estimates the gradient:

        dL/dw  ~=  (L(w + xi) - L(w)) xi / sigma^2

    (unbiased to first order in ``sigma``; ``perturbations`` independent draws are
    averaged). The optimiser applies it like a gradient (descent convention). Only
    forward passes are used, so the rule requires nothing of the architecture. The
    weights are restored exactly (copied back) after each perturbed pass; the noise
    comes from the rule's own generator, seeded from the run's.
    """

    name = "weight_perturbation"
    description = "Weight perturbation: loss change under random weight noise estimates the gradient"
    citation = WERFEL_2005
    family = "perturbation"
    requires = frozenset()
    weight_transport = False
    global_error = True
    defaults = {
        "sigma": Hyperparameter(
            1e-3,
            "small-noise regime of Werfel et al. 2005 (loss change linear in the noise): well "
            "below the initial weight scale 1/sqrt(784) ~ 0.036, well above float32 resolution",
            minimum=0.0, exclusive_minimum=True, search=LogUniform(1e-4, 1e-2),
        ),
        "perturbations": Hyperparameter(
            1, "one perturbation per update, as analysed by Werfel et al. 2005"
        ),
    }

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Create the rule's own noise generator on the network's device, seeded from ``generator``."""
        super().bind(network, generator)
        self.noise_generator = derived_generator(generator, network.device)

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Average ``(L(w + xi) - L(w)) xi / sigma^2`` over the perturbations into ``.grad``."""
        sigma = float(self.config["sigma"])
        count = int(self.config["perturbations"])
        if sigma <= 0 or count < 1:
            raise ValueError(f"sigma must be positive and perturbations >= 1, got {sigma}, {count}")
        params = self.network.plastic_parameters()
        logits = self.network(x)
        loss = loss_fn(logits, y)
        originals = [p.detach().clone() for p in params]
        estimates = [torch.zeros_like(p) for p in params]
        try:
            for _ in range(count):
                noises = [
                    torch.randn(p.shape, generator=self.noise_generator, dtype=p.dtype, device=p.device) * sigma
                    for p in params
                ]
                for p, noise in zip(params, noises, strict=True):
                    p.add_(noise)
                perturbed = loss_fn(self.network(x), y)
                for p, original in zip(params, originals, strict=True):
                    p.copy_(original)
                coefficient = (perturbed - loss) / (sigma**2 * count)
                for estimate, noise in zip(estimates, noises, strict=True):
                    estimate.add_(coefficient * noise)
        finally:
            for p, original in zip(params, originals, strict=True):
                p.copy_(original)
        for p, estimate in zip(params, estimates, strict=True):
            accumulate_grad(p, estimate)
        return loss.detach(), logits.detach()


@hookimpl
def biobench_register_rules() -> list[type[LearningRule]]:
    """Register weight perturbation."""
    return [WeightPerturbation]
