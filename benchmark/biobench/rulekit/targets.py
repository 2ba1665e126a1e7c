"""Building blocks of the target-propagation rules: learned inverses and difference-corrected targets.

:class:`DifferenceTargetPropagationRule` trains every plastic layer towards a local
target (Lee et al. 2015). The targets are propagated from the output downwards
through learned approximate inverses ``g_l`` of the layers (the rule's own
parameters), with the difference correction that makes them exact for a perfect
inverse; the inverses are trained in the same update by a reconstruction loss that
subclasses choose (:meth:`DifferenceTargetPropagationRule.feedback_loss`).
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench.plugin_api.interfaces import LearningRule, LossFn, Network, accumulate_grad
from biobench.plugin_api.layers import LayerSignals
from biobench.plugin_api.optimization import OptimizerSettings, build_optimizer
from biobench.rulekit.perturbation import derived_generator

#: Activations of the feedback mappings ``g_l``.
FEEDBACK_ACTIVATIONS = {"tanh": torch.tanh, "linear": lambda u: u}
#: The smallest noise scale used to normalise the reconstruction loss (Meulemans et al. 2020's code).
MIN_RECONSTRUCTION_SIGMA = 0.02


class DifferenceTargetPropagationRule(LearningRule):
    """Difference target propagation with learned inverses (Lee, Zhang, Fischer & Bengio 2015).

    Layer ``l`` (1-based, ``L`` layers, ``h_l`` its activity, ``h_0 = x``) has, for
    ``l >= 2``, a feedback mapping ``g_l(h) = a(h Q_l^T + c_l)`` from its activity to
    that of layer ``l - 1`` (``Q_l``: (n_{l-1}, n_l), ``a`` = ``feedback_activation``).
    Targets, with ``e = dL/dh_L`` of the batch-mean task loss and ``beta`` =
    ``target_stepsize``:

        t_L     = h_L - beta e
        t_{l-1} = h_{l-1} + g_l(t_l) - g_l(h_l)          (l = L, ..., 2)

    Every layer descends its local loss ``||h_l - t_l||^2`` (summed over units, averaged
    over the batch) with its input held fixed:

        W_l.grad = (1/B) sum_b 2 (f'(u_l) * (h_l - t_l))_b^T h_{l-1,b},   b_l.grad = mean_b 2 f'(u_l) * (h_l - t_l)

    and the feedback parameters ``Q_l, c_l`` descend :meth:`feedback_loss` on the same
    batch, in the same optimiser step, with their own step size and weight decay
    (``feedback_lr``, ``feedback_weight_decay``, ``feedback_beta1/2``; see
    :meth:`configure_optimizer`). The layers must form a chain (layer ``l``'s input is
    layer ``l - 1``'s output) with static rate units (``rate``) and dense matrices.
    ``config`` must hold ``target_stepsize``, ``sigma`` (the reconstruction noise),
    ``feedback_activation``, ``feedback_lr``, ``feedback_weight_decay``,
    ``feedback_beta1`` and ``feedback_beta2`` (Adam's betas of the feedback group).
    """

    requires = frozenset({"signals", "rate", "dense"})
    weight_transport = False
    global_error = True

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Check the chain, draw the feedback matrices (Xavier normal, biases 0) and the noise generator."""
        super().bind(network, generator)
        layers = network.layers
        for lower, upper in zip(layers[:-1], layers[1:], strict=False):
            if upper.in_features != lower.out_features:
                raise ValueError(
                    f"{self.name} needs a chain of plastic layers: layer {upper.layer_name!r} has "
                    f"{upper.in_features} inputs but {lower.layer_name!r} has {lower.out_features} outputs"
                )
        if self.config["feedback_activation"] not in FEEDBACK_ACTIVATIONS:
            raise ValueError(f"unknown feedback_activation {self.config['feedback_activation']!r}; "
                             f"known: {sorted(FEEDBACK_ACTIVATIONS)}")
        self.feedback_matrices = nn.ParameterDict()
        self.feedback_biases = nn.ParameterDict()
        for index, layer in enumerate(layers):
            if index == 0:
                continue
            rows, columns = layer.in_features, layer.out_features
            std = (2.0 / (rows + columns)) ** 0.5  # Xavier normal (Glorot & Bengio 2010)
            self.feedback_matrices[str(index)] = nn.Parameter(torch.randn(rows, columns, generator=generator) * std)
            self.feedback_biases[str(index)] = nn.Parameter(torch.zeros(rows))
        self.noise_generator = derived_generator(generator, network.device)  # noise drawn where the activities are

    def inverse(self, index: int, activity: Tensor) -> Tensor:
        """``g_index(activity)``: layer ``index``'s activity (0-based index >= 1) mapped to layer ``index - 1``'s."""
        act = FEEDBACK_ACTIVATIONS[self.config["feedback_activation"]]
        return act(F.linear(activity, self.feedback_matrices[str(index)], self.feedback_biases[str(index)]))

    def difference_step(self, index: int, target: Tensor, signals: list[LayerSignals]) -> Tensor:
        """``h_{index-1} + g_index(target) - g_index(h_index)``: the difference-corrected target one layer down."""
        return signals[index].pre + self.inverse(index, target) - self.inverse(index, signals[index].post)

    def targets(self, output_target: Tensor, signals: list[LayerSignals]) -> list[Tensor]:
        """The target of every layer's output, from the output target down (no gradient)."""
        with torch.no_grad():
            targets = [output_target]
            for index in range(len(signals) - 1, 0, -1):
                targets.append(self.difference_step(index, targets[-1], signals))
        return targets[::-1]

    def reconstruction_noise(self, like: Tensor) -> Tensor:
        """``N(0, sigma^2)`` noise shaped like ``like``, from the rule's own generator, on its device."""
        sigma = float(self.config["sigma"])
        return torch.randn(
            like.shape, generator=self.noise_generator, dtype=like.dtype, device=self.noise_generator.device
        ) * sigma

    def reconstruction_scale(self) -> float:
        """``1 / max(sigma, 0.02)^2``, the normalisation of the reconstruction losses in Meulemans et al. 2020's code."""
        return 1.0 / max(float(self.config["sigma"]), MIN_RECONSTRUCTION_SIGMA) ** 2

    @abc.abstractmethod
    def feedback_loss(self, index: int, signals: list[LayerSignals], noise: Tensor) -> Tensor:
        """The reconstruction loss of layer ``index``'s feedback mapping, for corruption ``noise`` of ``h_{index-1}``."""

    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """Targets from the output down, local updates of every layer, then the feedback losses."""
        layers = self.network.layers
        with torch.no_grad():
            logits, signals = self.network.forward_with_signals(x)
        if any(s is None or s.time_major for s in signals):
            raise RuntimeError(f"{self.name} needs one static (batch, units) recording per layer")
        if signals[-1].post.shape != logits.shape:
            raise RuntimeError(f"{self.name}: the last plastic layer's activity is not the network's logits")
        with torch.enable_grad():
            output = logits.detach().requires_grad_(True)
            loss = loss_fn(output, y)
            (error,) = torch.autograd.grad(loss, output)
        beta = float(self.config["target_stepsize"])
        targets = self.targets(output.detach() - beta * error, signals)
        batch = len(x)
        for layer, signal, target in zip(layers, signals, targets, strict=True):
            teaching = 2.0 * layer.activation_derivative(signal.drive) * (signal.post - target)
            accumulate_grad(layer.weight, teaching.t() @ signal.pre / batch)
            if layer.bias is not None:
                accumulate_grad(layer.bias, teaching.mean(0))
        with torch.enable_grad():
            for index in range(1, len(layers)):
                noise = self.reconstruction_noise(signals[index].pre)
                rec = self.feedback_loss(index, signals, noise)
                params = [self.feedback_matrices[str(index)], self.feedback_biases[str(index)]]
                for param, grad in zip(params, torch.autograd.grad(rec, params), strict=True):
                    accumulate_grad(param, grad)
        return loss.detach(), logits.detach()

    def feedback_parameters(self) -> list[nn.Parameter]:
        """The feedback matrices and biases of every layer after the first."""
        return [*self.feedback_matrices.values(), *self.feedback_biases.values()]

    def configure_optimizer(
        self, params: list[nn.Parameter], settings: OptimizerSettings | None = None
    ) -> torch.optim.Optimizer:
        """The run's optimiser; the feedback parameters get ``feedback_lr``, ``feedback_weight_decay`` and ``feedback_beta1/2``."""
        settings = settings or OptimizerSettings.resolve(self.optimizer)
        own = {id(p) for p in self.feedback_parameters()}
        feedback_group = {
            "params": [p for p in params if id(p) in own],
            "lr": float(self.config["feedback_lr"]),
            "weight_decay": float(self.config["feedback_weight_decay"]),
        }
        if settings.name in ("adam", "adamw"):
            feedback_group["betas"] = (float(self.config["feedback_beta1"]), float(self.config["feedback_beta2"]))
        groups = [{"params": [p for p in params if id(p) not in own]}, feedback_group]
        return build_optimizer([g for g in groups if g["params"]], settings)
