"""Building blocks of the perturbation rules: their own noise generators and node-perturbation estimates."""

from __future__ import annotations

import torch
from torch import Tensor

from biobench.plugin_api.interfaces import LearningRule, LossFn, Network, accumulate_grad
from biobench.plugin_api.layers import LayerSignals, PlasticLayer
from biobench.plugin_api.outputs import step_outputs

#: The paper behind weight and node perturbation as the harness implements them.
WERFEL_2005 = (
    "Werfel, Xie & Seung (2005), Learning curves for stochastic gradient descent in linear "
    "feedforward networks, Neural Computation 17(12):2699-2718"
)


def derived_generator(generator: torch.Generator, device: torch.device | str | None = None) -> torch.Generator:
    """A new generator on ``device`` (default: the CPU) seeded by one draw from ``generator``.

    A rule's own noise source: pass the parameters' device (``network.device`` in
    ``bind``) and draw with ``device=`` set, so noise is drawn where it is used. The
    seed is the same on every device; the numbers a CUDA generator draws from it are
    not the CPU's.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    created = torch.Generator() if device is None else torch.Generator(device=device)
    return created.manual_seed(seed)


def per_example_losses(loss_fn: LossFn, logits: Tensor, y: Tensor) -> Tensor:
    """The task loss of each example separately, shape (batch,).

    Logits with step outputs (:func:`biobench.with_step_outputs`) give each example
    the sum or mean over steps of its loss at every step.
    """
    steps = step_outputs(logits)
    if steps is not None:
        values = steps.values
        time, batch = values.shape[0], values.shape[1]
        flat = per_example_losses(loss_fn, values.reshape(time * batch, *values.shape[2:]), y.repeat(time))
        per_step = flat.reshape(time, batch)
        return per_step.sum(0) if steps.reduction == "sum" else per_step.mean(0)
    try:
        return torch.func.vmap(lambda lo, t: loss_fn(lo.unsqueeze(0), t.unsqueeze(0)))(logits, y)
    except Exception:  # a loss that vmap cannot batch: one call per example
        return torch.stack([loss_fn(logits[i : i + 1], y[i : i + 1]) for i in range(len(y))])


class NodePerturbationRule(LearningRule):
    """The node-perturbation estimator (Werfel, Xie & Seung 2005), for rules to build on.

    Every plastic layer's synaptic drive gets noise ``xi_{l,n} ~ N(0, sigma^2 I)``
    (per example ``n``, through ``layer.drive_noise``, all layers at once). The
    change of each example's loss, correlated with the noise, estimates the
    gradient with respect to the drive,

        g_{l,n} = ((l_n(xi) - l_n(0)) / sigma^2) xi_{l,n},

    with ``l_n`` the loss of example ``n``. Subclasses say how ``g`` becomes a
    parameter update (:meth:`apply_drive_gradient`; by default the dense one with
    the clean pass's pre-synaptic activity) and which signals they need
    (:meth:`check_signal`). The noise comes from the rule's own generator, seeded
    from the run's, on the network's device; ``config["sigma"]`` is the noise scale.
    """

    def bind(self, network: Network, generator: torch.Generator) -> None:
        """Create the rule's own noise generator on the network's device, seeded from ``generator``."""
        super().bind(network, generator)
        self.noise_generator = derived_generator(generator, network.device)

    @torch.no_grad()
    def compute_update(self, x: Tensor, y: Tensor, loss_fn: LossFn) -> tuple[Tensor, Tensor]:
        """One clean and one perturbed pass; correlate each example's loss change with its noise."""
        loss, logits, signals, drive_gradients = self.estimate_drive_gradients(x, y, loss_fn)
        for layer, signal, drive_gradient in zip(self.network.layers, signals, drive_gradients, strict=True):
            self.apply_drive_gradient(layer, signal, drive_gradient, len(y))
        return loss.detach(), logits.detach()

    def estimate_drive_gradients(
        self, x: Tensor, y: Tensor, loss_fn: LossFn
    ) -> tuple[Tensor, Tensor, list[LayerSignals], list[Tensor]]:
        """(loss, logits, clean signals, per-example ``((l_n(xi) - l_n(0)) / sigma^2) xi_{l,n}`` per layer)."""
        sigma = float(self.config["sigma"])
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        layers = self.network.layers
        logits, signals = self.network.forward_with_signals(x)
        loss = loss_fn(logits, y)
        clean = per_example_losses(loss_fn, logits, y)
        noises = []
        for layer, signal in zip(layers, signals, strict=True):
            self.check_signal(layer, signal)
            shape = signal.drive.shape[1:] if signal.time_major else signal.drive.shape
            noises.append(
                torch.randn(
                    shape, generator=self.noise_generator, dtype=signal.drive.dtype, device=signal.drive.device
                ) * sigma
            )
        saved = [layer.drive_noise for layer in layers]
        try:
            for layer, noise in zip(layers, noises, strict=True):
                layer.drive_noise = noise
            perturbed = per_example_losses(loss_fn, self.network(x), y)
        finally:
            for layer, previous in zip(layers, saved, strict=True):
                layer.drive_noise = previous
        coefficient = (perturbed - clean) / sigma**2
        return loss, logits, signals, [coefficient[:, None] * noise for noise in noises]

    def check_signal(self, layer: PlasticLayer, signal: LayerSignals | None) -> None:
        """Raise if ``layer`` recorded nothing this rule can use."""
        if signal is None:
            raise RuntimeError(f"layer {layer.layer_name!r} recorded no signals")

    def apply_drive_gradient(
        self, layer: PlasticLayer, signal: LayerSignals, drive_gradient: Tensor, batch: int
    ) -> None:
        """Turn the per-example drive gradient into weight and bias updates with the clean pre-synaptic activity."""
        pre = signal.pre.mean(0) if signal.time_major else signal.pre
        accumulate_grad(layer.weight, drive_gradient.t() @ pre / batch)
        if layer.bias is not None:
            accumulate_grad(layer.bias, drive_gradient.mean(0))
