"""Plastic layers: the small interface an architecture exposes to learning rules.

A plastic layer is an ``nn.Module`` with a synaptic ``weight`` (and optional
``bias``) that a rule may update, plus three hooks a rule can use without knowing
the architecture:

* ``feedback``: a function ``g_out -> g_in`` replacing the gradient that autograd
  would send to the layer's input (``g_out @ weight`` for a dense layer). This is
  where feedback alignment, sign symmetry and Kolen-Pollack plug in. The layer's
  own parameters still receive their true local gradient.
* ``drive_noise``: a tensor added to the synaptic drive on the next forward passes
  (node perturbation).
* recording: between ``start_recording()`` and ``stop_recording()`` the layer
  keeps its pre-synaptic input, synaptic drive and post-synaptic output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

FeedbackFn = Callable[[Tensor], Tensor]


@dataclass
class LayerSignals:
    """Signals of one plastic layer during one forward pass (detached).

    ``pre``: (batch, in) pre-synaptic activity; ``drive``: (batch, out) synaptic
    drive (``pre @ W.T + b`` for dense layers); ``post``: (batch, out) post-synaptic
    activity. Spiking layers stack time first: (time, batch, features), with
    ``time_major`` set, and may add ``membrane``. ``extras`` holds further signals
    that a capability promises (e.g. the spline basis activations of KAN layers).
    """

    pre: Tensor
    drive: Tensor
    post: Tensor
    time_major: bool = False
    membrane: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class _RerouteInputGradient(torch.autograd.Function):
    """Identity on ``y`` whose backward sends ``feedback(g)`` to ``x`` instead of autograd's."""

    @staticmethod
    def forward(ctx, y: Tensor, x: Tensor, feedback: FeedbackFn) -> Tensor:  # noqa: D102
        ctx.feedback = feedback
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # noqa: D102
        grad_x = ctx.feedback(grad_y) if ctx.needs_input_grad[1] else None
        return grad_y, grad_x, None


def reroute_input_gradient(
    layer_fn: Callable[[Tensor], Tensor], x: Tensor, feedback: FeedbackFn | None
) -> Tensor:
    """Apply ``layer_fn`` to ``x``; if ``feedback`` is given, ``x`` gets ``feedback(g_out)``.

    The parameters used inside ``layer_fn`` keep their exact local gradients, because
    ``layer_fn`` runs on a detached copy of ``x``; only the path to ``x`` changes.
    """
    if feedback is None:
        return layer_fn(x)
    y = layer_fn(x.detach())
    return _RerouteInputGradient.apply(y, x, feedback)


class PlasticLayer(nn.Module):
    """Base class of layers that learning rules may train (see module docstring)."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(self, name: str) -> None:
        super().__init__()
        self.layer_name = name
        self.feedback: FeedbackFn | None = None
        self.drive_noise: Tensor | None = None
        self._recording = False
        self._records: list[LayerSignals] = []

    @property
    def in_features(self) -> int:
        """Number of pre-synaptic units (layers whose ``weight`` is not (out, in) override this)."""
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        """Number of post-synaptic units."""
        return self.weight.shape[0]

    def forward_matrix(self) -> Tensor:
        """The (out, in) matrix that carries the input gradient in backprop (``weight`` for dense layers).

        ``feedback`` functions replace ``g_out @ forward_matrix()``; alignment is
        measured against it. Layers with a non-dense ``weight`` override this.
        """
        return self.weight

    @torch.no_grad()
    def synaptic_operations(self, pre: Tensor) -> tuple[float, float, bool]:
        """``(dense, effective, binary)`` synaptic operations of one forward call on ``pre`` ``(..., in)``.

        NeuroBench's counts (Yik et al. 2025, "synaptic operations"): ``dense`` counts every
        connection for every input row, zero or not, ``rows * in * out``; ``effective`` only
        those whose input is non-zero and whose weight is non-zero,
        ``sum_rows sum_i [pre_i != 0] * #{o: W_oi != 0}`` (presynaptic activity times fan-out).
        Bias additions are not counted. ``binary`` is True when every input is -1, 0 or 1 (spikes),
        which makes the effective operations accumulates (ACs) rather than multiply-accumulates.
        Layers whose ``weight`` is not a dense (out, in) matrix override this.
        """
        flat = pre.detach().reshape(-1, pre.shape[-1])
        fan_out = (self.weight.detach() != 0).sum(0).to(torch.float64)  # (in,)
        active = (flat != 0).sum(0).to(torch.float64)  # rows in which each input is non-zero
        dense = float(flat.shape[0]) * self.in_features * self.out_features
        binary = bool(((flat == 0) | (flat == 1) | (flat == -1)).all())
        return dense, float(active @ fan_out), binary

    def start_recording(self) -> None:
        """Keep the signals of the following forward passes."""
        self._recording = True
        self._records = []

    def stop_recording(self) -> LayerSignals | None:
        """Stop recording and return the signals (time-stacked if called once per step)."""
        self._recording = False
        records, self._records = self._records, []
        if not records:
            return None
        if len(records) == 1:
            return records[0]
        membrane = None
        if records[0].membrane is not None:
            membrane = torch.stack([r.membrane for r in records])
        return LayerSignals(
            pre=torch.stack([r.pre for r in records]),
            drive=torch.stack([r.drive for r in records]),
            post=torch.stack([r.post for r in records]),
            time_major=True,
            membrane=membrane,
        )

    def _record(self, pre: Tensor, drive: Tensor, post: Tensor, membrane: Tensor | None = None):
        if self._recording:
            self._records.append(
                LayerSignals(
                    pre=pre.detach(),
                    drive=drive.detach(),
                    post=post.detach(),
                    membrane=None if membrane is None else membrane.detach(),
                )
            )

    def activation_derivative(self, drive: Tensor) -> Tensor:
        """``f'(drive)`` for rate layers; layers without a static activation raise."""
        raise NotImplementedError(f"{type(self).__name__} has no static activation")

    def node_factor_update(self, node_factor: Tensor, signals: LayerSignals) -> dict[str, Tensor]:
        """``sum_b F[b, o] * du[b, o]/dtheta`` for every parameter ``theta``, keyed by parameter name.

        The update of every parameter under a rule of the form ``dW_oi = F_o * pre_i``
        (``node_factor`` ``F`` is (batch, out), ``signals`` the layer's recorded signals
        on the same batch). Layers whose drive is not ``pre @ W.T + b`` (KAN layers,
        capability ``kan_splines``) implement it; others raise.
        """
        raise NotImplementedError(f"{type(self).__name__} does not map node factors onto its parameters")


class PlasticLinear(PlasticLayer):
    """A dense layer ``post = f(pre @ W.T + b + drive_noise)`` honouring all rule hooks.

    ``activation`` is an elementwise function (``None``: identity, as for output
    logits). Spiking architectures use it with ``activation=None`` and put their
    neuron model after it.
    """

    def __init__(
        self,
        name: str,
        in_features: int,
        out_features: int,
        activation: Callable[[Tensor], Tensor] | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(name)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.activation = activation
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator``."""
        bound = 1.0 / self.weight.shape[1] ** 0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def _linear(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Return the post-synaptic activity for pre-synaptic input ``x``."""
        drive = reroute_input_gradient(self._linear, x, self.feedback)
        if self.drive_noise is not None:
            drive = drive + self.drive_noise
        post = drive if self.activation is None else self.activation(drive)
        if self._recording:
            self._record(x, drive, post)
        return post

    def activation_derivative(self, drive: Tensor) -> Tensor:
        """Elementwise ``f'(drive)``, by autograd on the activation (exact for elementwise f)."""
        if self.activation is None:
            return torch.ones_like(drive)
        with torch.enable_grad():
            d = drive.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.activation(d).sum(), d)
        return grad

    def extra_repr(self) -> str:
        return f"{self.layer_name}: {self.in_features} -> {self.out_features}"
