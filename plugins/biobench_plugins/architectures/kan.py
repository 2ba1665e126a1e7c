"""Kolmogorov-Arnold networks (Liu et al. 2024) built from pykan's ``KANLayer``.

A KAN layer puts a learnable activation ``phi_{o,i}`` on every edge ``i -> o`` and
sums on the nodes. In pykan (0.2.x) each edge activation is

    phi_{o,i}(x) = mask_{io} * (scale_base_{io} * b(x) + scale_sp_{io} * sum_k coef_{iok} B_k(x))

with ``b`` the residual base function (SiLU) and ``B_k`` the ``G + k`` B-spline
basis functions of order ``k`` on a grid of ``G`` intervals over ``grid_range``
(extended by ``k`` knots on each side). The node sum is the layer's output:

    u_o = sum_i phi_{o,i}(x_i)

**Forward pass.** :class:`KANPlasticLayer` holds the parameters and the grid of a
pykan ``KANLayer`` (initialised by pykan itself) and evaluates the same function
with pykan's ``B_batch``, but computes the node sums as two matrix products,

    u = b(x) @ (mask * scale_base) + B(x).reshape(batch, in * (G+k)) @ W_sp,
    W_sp[(i, k), o] = mask_{io} * scale_sp_{io} * coef_{iok},

instead of materialising the (batch, in, out) edge outputs that
``KANLayer.forward`` builds (and clones twice) for plotting. The two are the same
function up to floating-point summation order; ``tests/test_kan.py`` checks the
node sums and the edge outputs against ``KANLayer.forward``. When the inputs need
no gradient and take few distinct values (MNIST pixels: at most 256), ``B_batch``
runs once per distinct value and the result is gathered
(:meth:`KANPlasticLayer.basis`). The grid is fixed (pykan's
``update_grid_from_samples`` is a data-driven re-fit, not a learning rule, and is
not used), there is no symbolic branch, no saving of activations, and pykan's node/sub-node affine parameters are not used (``MultKAN`` keeps them
fixed at scale 1, bias 0 unless ``affine_trainable``), so the network equals
``MultKAN(width=[784, hidden, 10], symbolic_enabled=False)`` with the same
parameters.

**Plastic layers and their parameters.** Each KAN layer is one plastic layer:

* ``weight`` = the spline coefficients ``coef``, shape ``(in, out, G + k)`` (pykan's
  layout; *not* an (out, in) matrix), so ``in_features``/``out_features`` are
  overridden to give the unit counts;
* ``scale_base`` ``(in, out)`` and ``scale_sp`` ``(in, out)``, also trainable;
* ``bias`` is ``None`` (pykan's ``KANLayer`` has none);
* ``grid`` ``(in, G + 2k + 1)`` and ``mask`` ``(in, out)`` are fixed buffers.

**How a rule written for weights maps onto spline coefficients.** The node sum is
linear in every parameter group, so each edge ``i -> o`` is a bundle of ``G + k + 1``
"synapses" whose pre-synaptic factors are the local derivatives of the node sum:

    du_o/dcoef_{iok}       = mask_{io} * scale_sp_{io} * B_k(x_i)
    du_o/dscale_base_{io}  = mask_{io} * b(x_i)
    du_o/dscale_sp_{io}    = mask_{io} * sum_k coef_{iok} B_k(x_i)  (the edge's spline output)

A dense rule of the form ``dW_{oi} = F_o * x_i`` (``x_i = du_o/dW_{oi}``) becomes
``dtheta = F_o * du_o/dtheta`` for every parameter ``theta`` of edge ``i -> o``
(:meth:`KANPlasticLayer.node_factor_update`). With ``F`` = the backpropagated error
this is exactly backprop's local gradient; the KAN Hebbian rule uses ``F`` = the
post-synaptic activity, the KAN node-perturbation rule the node-noise estimate of
the error. Rules that perturb parameters directly (weight perturbation) need no
mapping: they perturb ``coef``, ``scale_base`` and ``scale_sp``.

**Feedback (for feedback alignment and relatives).** Backprop sends to the input
``g_in[b, i] = sum_o g_out[b, o] * phi'_{o,i}(x_{b,i})``: a per-sample Jacobian.
``layer.feedback`` replaces that whole transport (``reroute_input_gradient``); a
fixed random ``(out, in)`` matrix ``B`` gives ``g_in = g_out @ B``, i.e. a fixed random
number in place of the derivative of each edge's activation. The layer's own
parameters keep their exact local gradients. :meth:`KANPlasticLayer.forward_matrix`
is the matrix that feedback weights are compared with: the mean derivative of
every edge activation over the inputs of the layer's most recent forward pass,

    M_{oi} = mean_b phi'_{o,i}(x_{b,i}),

so ``g_out @ M`` is the transported gradient when every sample's derivative is
replaced by the batch mean. Before any forward pass the mean is taken over the
``G + 1`` grid knots of ``grid_range`` for every input. Rules that read the forward
matrix at update time (sign symmetry) thus see the previous forward pass's mean.
Rules that give a learned ``B`` the forward weights' update (Kolen-Pollack) give it
``g_out^T x``, the update of a dense matrix in its place: on a KAN that is not the
change of ``M``, so ``B`` has no reason to converge to ``M``.

**Node noise and signals.** ``drive_noise`` is added to the node sums. Recording
gives ``pre`` = the layer's input (batch, in), ``drive`` = the node sums including
noise (batch, out), ``post`` = the node outputs, which equal ``drive`` (nodes only
sum; the architecture does not declare ``rate``, because the nonlinearity sits on the
edges, where ``activation_derivative(drive)`` cannot describe it, nor ``dense``).
The signals' ``extras`` add ``basis`` = ``B_k(x_i)`` (batch, in, G + k) and
``base`` = ``b(x_i)`` (batch, in); :meth:`KANPlasticLayer.edge_outputs` gives the
edge activations ``phi_{o,i}(x_i)`` (batch, in, out) on demand.

**Options.** ``hidden`` lists the hidden widths, any number of layers. ``base_function``
is the residual function ``b`` (pykan's ``silu``, ``identity``, ``zero``, or ``relu``,
``tanh``, ``sigmoid``). ``init`` with ``init_scale`` draws ``scale_base`` (the residual
branch's weights, the part of an edge that plays the role of a dense weight) as an
(out, in) matrix from a scheme of ``biobench.INIT_SCHEMES``; ``default`` keeps pykan's
draw ``(scale_base_mu + scale_base_sigma U(-1, 1)) / sqrt(in)`` times ``init_scale``.
The spline coefficients always keep pykan's initialisation (a least-squares fit to
noise of size ``noise_scale``), ``scale_sp`` its value. ``input_range`` maps the
task's inputs in [0, 1] linearly onto ``[low, high]`` before the first layer
(``[-1, 1]`` fills pykan's default grid, as efficient-kan's MNIST example normalises
its inputs); ``first_layer_grid="input_range"`` places the first layer's grid on
``input_range`` instead of ``grid_range``. The defaults are the network described above.

**Profiles.** pykan's B-spline evaluation dominates the cost with 784 inputs. The
``ci`` profile uses ``hidden=[32]`` (``profile_overrides``) and trains on the first
``CI_TRAIN_SUBSET`` training images (``run_overrides``); both are stored in every
record's config. ``smoke`` uses ``hidden=[16]``; a run's own ``hidden`` replaces both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from biobench import (
    INIT_SCHEMES,
    Architecture,
    Hyperparameter,
    LayerSignals,
    Network,
    PlasticLayer,
    hookimpl,
    init_matrix,
    on_accelerator,
    reroute_input_gradient,
)

#: Capability of architectures whose plastic layers are :class:`KANPlasticLayer`
#: (declared by ``biobench_plugins.capabilities.kan_splines``).
KAN_CAPABILITY = "kan_splines"
#: Training examples of the ``ci`` profile (``KAN.run_overrides``).
CI_TRAIN_SUBSET = 10000
#: Evaluate the basis per distinct input value when there are at most 1/RATIO as many values as inputs.
DISTINCT_VALUE_RATIO = 8

#: Residual base functions b(x): the names pykan's MultKAN accepts (silu, identity, zero) and
#: the usual activations (relu, tanh, sigmoid; pykan takes any function as ``base_fun``).
BASE_FUNCTIONS = {
    "silu": F.silu,
    "identity": lambda x: x,
    "zero": torch.zeros_like,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}

#: How the first layer's grid is placed: on ``grid_range`` like every layer, or on ``input_range``.
FIRST_LAYER_GRIDS = ("grid_range", "input_range")


def _base_derivative(name: str, x: Tensor) -> Tensor:
    if name == "silu":
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    if name == "identity":
        return torch.ones_like(x)
    if name == "relu":
        return (x > 0).to(x.dtype)
    if name == "tanh":
        return 1 - torch.tanh(x) ** 2
    if name == "sigmoid":
        s = torch.sigmoid(x)
        return s * (1 - s)
    return torch.zeros_like(x)


def _interval(name: str, value: list[float]) -> tuple[float, float]:
    """``value`` as an interval (low, high) with low < high, or a ValueError naming the option."""
    if len(value) != 2 or not float(value[0]) < float(value[1]):
        raise ValueError(f"option {name}={value!r} must be two numbers [low, high] with low < high")
    return float(value[0]), float(value[1])


class KANPlasticLayer(PlasticLayer):
    """One pykan KAN layer as a plastic layer (see the module docstring for the maths)."""

    def __init__(
        self,
        name: str,
        coef: Tensor,
        scale_base: Tensor,
        scale_sp: Tensor,
        grid: Tensor,
        mask: Tensor,
        spline_order: int,
        base_function: str = "silu",
    ) -> None:
        super().__init__(name)
        if base_function not in BASE_FUNCTIONS:
            raise ValueError(f"unknown base function {base_function!r}; known: {sorted(BASE_FUNCTIONS)}")
        n_in, n_out, n_basis = coef.shape
        if grid.shape != (n_in, n_basis + spline_order + 1):
            raise ValueError(f"grid shape {tuple(grid.shape)} does not fit coefficients {tuple(coef.shape)}")
        self.weight = nn.Parameter(coef.detach().clone())
        self.bias = None
        self.scale_base = nn.Parameter(scale_base.detach().clone())
        self.scale_sp = nn.Parameter(scale_sp.detach().clone())
        self.register_buffer("grid", grid.detach().clone())
        self.register_buffer("mask", mask.detach().clone())
        self.spline_order = int(spline_order)
        self.base_function = base_function
        self._features: tuple[Tensor, Tensor] | None = None
        self._last_input: Tensor | None = None

    @classmethod
    def from_pykan(cls, name: str, layer: Any, base_function: str = "silu") -> KANPlasticLayer:
        """Copy the parameters, grid and mask of a pykan ``KANLayer``."""
        return cls(
            name,
            coef=layer.coef,
            scale_base=layer.scale_base,
            scale_sp=layer.scale_sp,
            grid=layer.grid,
            mask=layer.mask,
            spline_order=layer.k,
            base_function=base_function,
        )

    @property
    def in_features(self) -> int:
        """Number of input units (``weight`` is (in, out, G + k))."""
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        """Number of output units (nodes)."""
        return self.weight.shape[1]

    @property
    def num_basis(self) -> int:
        """Number of B-spline basis functions per edge, ``G + k``."""
        return self.weight.shape[2]

    def basis(self, x: Tensor) -> Tensor:
        """B-spline basis activations ``B_k(x_i)``, (batch, in, G + k), by pykan's ``B_batch``.

        When every input shares one grid and ``x`` needs no gradient, ``B_batch`` is
        evaluated once per distinct value of ``x`` and the result gathered (the same
        elementwise computation, so the same numbers): MNIST pixels take at most 256
        values, which makes the first layer several times faster. Not on an accelerator:
        finding the distinct values there waits for the device, and the direct evaluation
        gives the same numbers.
        """
        from kan.spline import B_batch

        if not x.requires_grad and not on_accelerator(x.device) and bool((self.grid == self.grid[:1]).all()):
            values, inverse = torch.unique(x, return_inverse=True)
            if values.numel() * DISTINCT_VALUE_RATIO <= x.numel():
                table = B_batch(values.unsqueeze(1), self.grid[:1], k=self.spline_order)[:, 0, :]
                return table[inverse]
        return B_batch(x, self.grid, k=self.spline_order)

    def basis_derivative(self, x: Tensor) -> Tensor:
        """``dB_k/dx`` at ``x_i``, (batch, in, G + k), from the order ``k - 1`` basis.

        ``B'_{j,k}(x) = k * (B_{j,k-1}(x) / (t_{j+k} - t_j) - B_{j+1,k-1}(x) / (t_{j+k+1} - t_{j+1}))``
        (de Boor, A Practical Guide to Splines, ch. X).
        """
        from kan.spline import B_batch

        k, n, t = self.spline_order, self.num_basis, self.grid
        if k == 0:
            return torch.zeros(x.shape[0], x.shape[1], n, dtype=x.dtype, device=x.device)
        lower = B_batch(x, t, k=k - 1)
        left = t[:, k : k + n] - t[:, :n]
        right = t[:, k + 1 : k + 1 + n] - t[:, 1 : 1 + n]
        return k * (lower[:, :, :n] / left - lower[:, :, 1:] / right)

    def base(self, x: Tensor) -> Tensor:
        """Base-function activations ``b(x_i)``, (batch, in)."""
        return BASE_FUNCTIONS[self.base_function](x)

    def spline_matrix(self) -> Tensor:
        """``W_sp``, (in * (G + k), out): ``mask * scale_sp * coef`` with rows ordered (i, k)."""
        w = (self.mask * self.scale_sp).unsqueeze(2) * self.weight  # (in, out, K)
        return w.permute(0, 2, 1).reshape(-1, self.out_features)

    def _node_sums(self, x: Tensor) -> Tensor:
        base = self.base(x)
        basis = self.basis(x)
        if self._recording:
            self._features = (base.detach(), basis.detach())
        spline_part = basis.reshape(x.shape[0], -1) @ self.spline_matrix()
        return base @ (self.mask * self.scale_base) + spline_part

    def forward(self, x: Tensor) -> Tensor:
        """Node sums ``u_o = sum_i phi_{o,i}(x_i)`` (+ ``drive_noise``) for input ``x`` (batch, in)."""
        self._last_input = x.detach()
        drive = reroute_input_gradient(self._node_sums, x, self.feedback)
        if self.drive_noise is not None:
            drive = drive + self.drive_noise
        if self._recording:
            base, basis = self._features
            self._features = None
            self._records.append(
                LayerSignals(
                    pre=x.detach(), drive=drive.detach(), post=drive.detach(),
                    extras={"basis": basis, "base": base},
                )
            )
        return drive

    @torch.no_grad()
    def synaptic_operations(self, pre: Tensor) -> tuple[float, float, bool]:
        """``(dense, effective, False)``: the multiply-accumulates of the node sums on input ``pre`` (batch, in).

        Every edge ``i -> o`` holds ``G + k + 1`` synapses: one per spline coefficient
        (``scale_sp * coef_k`` times ``B_k(x_i)``) and one base weight (``scale_base`` times
        ``b(x_i)``). ``dense`` counts them all for every input row, ``rows * in * out * (G + k + 1)``
        (the node sums' two matrix products); ``effective`` only those whose presynaptic factor
        (``B_k(x_i)`` or ``b(x_i)``) and weight (masked) are non-zero: a cubic B-spline basis has at
        most ``k + 1`` non-zero functions at any ``x``. The basis and base functions themselves
        (pykan's Cox-de Boor recursion and SiLU, per input, shared by all ``out`` edges) are the
        presynaptic activation functions, not synaptic operations, and are not counted, as
        NeuroBench counts activations apart from synaptic operations. The factors are real
        numbers, so the operations are multiply-accumulates.
        """
        flat = pre.detach().reshape(-1, self.in_features)
        live = self.mask != 0  # (in, out)
        spline_w = (live.unsqueeze(2) & (self.scale_sp != 0).unsqueeze(2) & (self.weight != 0)).sum(1)  # (in, K)
        base_w = (live & (self.scale_base != 0)).sum(1)  # (in,)
        basis_active = (self.basis(flat) != 0).sum(0)  # (in, K): rows where B_k(x_i) != 0
        base_active = (self.base(flat) != 0).sum(0)  # (in,)
        effective = (basis_active * spline_w).sum() + (base_active * base_w).sum()
        dense = float(flat.shape[0]) * self.in_features * self.out_features * (self.num_basis + 1)
        return dense, float(effective), False

    def edge_outputs(self, x: Tensor) -> Tensor:
        """Edge activations ``phi_{o,i}(x_i)``, (batch, in, out) (pykan's ``postacts``, transposed)."""
        spline = torch.einsum("bik,iok->bio", self.basis(x), self.weight)
        edges = self.scale_base.unsqueeze(0) * self.base(x).unsqueeze(2) + self.scale_sp.unsqueeze(0) * spline
        return self.mask.unsqueeze(0) * edges

    def edge_derivatives_mean(self, x: Tensor) -> Tensor:
        """``mean_b phi'_{o,i}(x_{b,i})`` as an (out, in) matrix."""
        mean_base = _base_derivative(self.base_function, x).mean(0)  # (in,)
        mean_basis = self.basis_derivative(x).mean(0)  # (in, K)
        spline = torch.einsum("ik,iok->io", mean_basis, self.weight)
        m = self.mask * (self.scale_base * mean_base.unsqueeze(1) + self.scale_sp * spline)
        return m.t()

    @torch.no_grad()
    def forward_matrix(self) -> Tensor:
        """Mean edge derivative over the last forward pass's inputs, (out, in) (module docstring)."""
        x = self._last_input
        if x is None:
            lo, hi = self.grid[:, self.spline_order], self.grid[:, -1 - self.spline_order]
            steps = torch.linspace(
                0, 1, self.num_basis - self.spline_order + 1, dtype=self.grid.dtype, device=self.grid.device
            )
            x = (lo.unsqueeze(0) + (hi - lo).unsqueeze(0) * steps.unsqueeze(1)).to(self.weight.device)
        return self.edge_derivatives_mean(x)

    @torch.no_grad()
    def node_factor_update(self, node_factor: Tensor, signals: LayerSignals) -> dict[str, Tensor]:
        """``sum_b F[b, o] * du[b, o]/dtheta`` for every parameter theta (module docstring).

        ``node_factor`` is (batch, out); ``signals`` the layer's recorded signals on
        the same batch. Returns a tensor shaped like each parameter, keyed
        ``weight``, ``scale_base`` and ``scale_sp``.
        """
        basis, base = signals.extras.get("basis"), signals.extras.get("base")
        if basis is None or base is None:
            raise ValueError("signals lack the basis activations; record them with forward_with_signals")
        factor = node_factor.to(self.weight.dtype)
        # per_coef[i, o, k] = sum_b B_k(x_bi) F[b, o]
        per_coef = torch.einsum("bik,bo->iok", basis, factor)
        return {
            "weight": (self.mask * self.scale_sp).unsqueeze(2) * per_coef,
            "scale_base": self.mask * (base.t() @ factor),
            "scale_sp": self.mask * (per_coef * self.weight).sum(2),
        }

    def extra_repr(self) -> str:
        return (
            f"{self.layer_name}: {self.in_features} -> {self.out_features}, "
            f"grid={self.num_basis - self.spline_order}, k={self.spline_order}"
        )


class KAN(Architecture):
    """A Kolmogorov-Arnold network of pykan KAN layers, 784 -> hidden ... -> 10.

    The module is the ``nn.Sequential`` of its plastic layers applied to ``chain_input(x)``,
    hence ``layer_chain``.
    """

    name = "kan"
    description = "Kolmogorov-Arnold network (pykan B-spline edges), 784 -> hidden ... -> 10"
    capabilities = frozenset(
        {"differentiable", "feedback", "node_noise", "signals", "layer_chain", KAN_CAPABILITY}
    )
    defaults = {
        "hidden": Hyperparameter(
            [64],
            "two layers as in the seed study (which gives no width); 64 keeps an epoch of "
            "full MNIST near 10 s on one CPU core",
            minimum=1,
        ),
        "grid_size": Hyperparameter(5, "pykan 0.2.8 KANLayer default num=5 (Liu et al. 2024)", minimum=1),
        "spline_order": Hyperparameter(3, "pykan 0.2.8 default k=3 (cubic B-splines)", minimum=1),
        "grid_range": Hyperparameter([-1.0, 1.0], "pykan 0.2.8 default grid_range"),
        "noise_scale": Hyperparameter(0.3, "pykan 0.2.8 MultKAN default noise_scale", minimum=0.0),
        "scale_base_mu": Hyperparameter(0.0, "pykan 0.2.8 default"),
        "scale_base_sigma": Hyperparameter(1.0, "pykan 0.2.8 default", minimum=0.0),
        "scale_sp": Hyperparameter(1.0, "pykan 0.2.8 default"),
        "base_function": Hyperparameter(
            "silu",
            "pykan 0.2.8 default residual function; identity, zero (pykan's other names), relu, tanh, "
            "sigmoid",
            choices=tuple(BASE_FUNCTIONS),
        ),
        "init": Hyperparameter(
            "default",
            "pykan 0.2.8: scale_base = (scale_base_mu + scale_base_sigma U(-1, 1)) / sqrt(in), i.e. "
            "U(-1/sqrt(in), 1/sqrt(in)) at the defaults, the distribution of efficient-kan's base weights "
            "(kaiming_uniform_ with a = sqrt 5); the other schemes draw scale_base as an (out, in) weight "
            "matrix; Glorot & Bengio (2010) for xavier, He et al. (2015) for kaiming",
            choices=tuple(INIT_SCHEMES),
        ),
        "init_scale": Hyperparameter(
            1.0,
            "s = 1 leaves pykan's draw unchanged; s is the factor of the default draw, the bound of "
            "uniform, the standard deviation of gaussian, the gain of xavier and kaiming",
            minimum=0.0,
            exclusive_minimum=True,
        ),
        "input_range": Hyperparameter(
            [0.0, 1.0],
            "the task's pixels in [0, 1] unchanged; [-1, 1] maps them linearly onto pykan's default "
            "grid, as efficient-kan's MNIST example (Normalize((0.5,), (0.5,))) does",
        ),
        "first_layer_grid": Hyperparameter(
            "grid_range",
            "every layer's grid spans grid_range (pykan builds all layers alike); 'input_range': the "
            "first layer's grid spans input_range, so that its splines cover the inputs exactly",
            choices=FIRST_LAYER_GRIDS,
        ),
    }
    profile_overrides = {
        "smoke": {"hidden": [16]},
        "ci": {"hidden": [32]},
    }
    run_overrides = {
        "ci": {"train_subset": CI_TRAIN_SUBSET},
    }

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        _interval("grid_range", self.config["grid_range"])
        _interval("input_range", self.config["input_range"])

    def build(self, input_size: int, num_classes: int, generator: torch.Generator) -> Network:
        """Initialise every layer with pykan's ``KANLayer`` under a seed drawn from ``generator``."""
        from kan.KANLayer import KANLayer

        c = self.config
        hidden = [int(h) for h in c["hidden"]]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        if c["base_function"] not in BASE_FUNCTIONS:
            raise ValueError(f"unknown base function {c['base_function']!r}; known: {sorted(BASE_FUNCTIONS)}")
        grid_range = list(_interval("grid_range", c["grid_range"]))
        input_range = list(_interval("input_range", c["input_range"]))
        init, init_scale = c["init"], float(c["init_scale"])
        sizes = [input_size, *hidden, num_classes]
        layers: list[KANPlasticLayer] = []
        for index in range(len(sizes) - 1):
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            layer_grid = input_range if index == 0 and c["first_layer_grid"] == "input_range" else grid_range
            # pykan draws its initial values from torch's global generator: fork it so
            # the initialisation depends on ``generator`` only and global state is untouched.
            # Its least-squares fit of the initial coefficients is not bitwise reproducible
            # in float32 (differences ~1e-8 between identical calls); built in float64 and
            # rounded to float32 it is.
            default_dtype = torch.get_default_dtype()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                torch.set_default_dtype(torch.float64)
                try:
                    reference = KANLayer(
                        in_dim=sizes[index],
                        out_dim=sizes[index + 1],
                        num=int(c["grid_size"]),
                        k=int(c["spline_order"]),
                        noise_scale=float(c["noise_scale"]),
                        scale_base_mu=float(c["scale_base_mu"]),
                        scale_base_sigma=float(c["scale_base_sigma"]),
                        scale_sp=float(c["scale_sp"]),
                        grid_range=layer_grid,
                    )
                finally:
                    torch.set_default_dtype(default_dtype)
            layer = KANPlasticLayer.from_pykan(f"kan{index + 1}", reference, c["base_function"])
            layer = layer.to(dtype=default_dtype)
            with torch.no_grad():
                if init != "default":
                    # a generator of its own: pykan's draws above came from ``seed`` already
                    init_generator = torch.Generator().manual_seed(
                        int(torch.randint(0, 2**62, (1,), generator=generator))
                    )
                    drawn = init_matrix(sizes[index + 1], sizes[index], init, init_scale, init_generator)
                    layer.scale_base.copy_(drawn.t())
                elif init_scale != 1.0:
                    layer.scale_base.mul_(init_scale)
            layers.append(layer)
        module = nn.Sequential(*layers)
        return Network(module=module, layers=list(layers), architecture=self)

    def chain_input(self, x: Tensor) -> Tensor:
        """The first layer's input: inputs in [0, 1] mapped linearly onto ``input_range``."""
        low, high = (float(v) for v in self.config["input_range"])
        if (low, high) != (0.0, 1.0):
            x = low + (high - low) * x
        return x

    def forward(self, module: nn.Module, x: Tensor) -> Tensor:
        """The node sums of the last layer for inputs in [0, 1] mapped linearly onto ``input_range``."""
        return module(self.chain_input(x))


#: Rules for dense layers and their counterparts for KAN layers (named in unsupported reasons).
KAN_COUNTERPARTS = {"hebbian": "kan_hebbian", "node_perturbation": "kan_node_perturbation"}


@hookimpl
def biobench_register_architectures() -> list[type[Architecture]]:
    """Register the KAN architecture."""
    return [KAN]


@hookimpl
def biobench_pairing_unsupported(
    architecture: Any, rule: type[Any], task: Any, capabilities: dict[str, str]
) -> str | None:
    """Explain why rules for dense layers cannot train a KAN, and why KAN rules need a KAN."""
    requires = set(getattr(rule, "requires", ()))
    provided = set(getattr(architecture, "capabilities", ()))
    if KAN_CAPABILITY in requires and KAN_CAPABILITY not in provided:
        return (
            f"rule {rule.name!r} trains the B-spline coefficients of KAN layers (capability "
            f"{KAN_CAPABILITY!r}: {capabilities.get(KAN_CAPABILITY, 'undeclared')}); architecture "
            f"{architecture.name!r} has none"
        )
    if not isinstance(architecture, KAN) or "dense" not in requires:
        return None
    counterpart = KAN_COUNTERPARTS.get(rule.name)
    hint = f"; its KAN counterpart is {counterpart!r}" if counterpart else ""
    missing = "; ".join(
        f"{m} ({capabilities.get(m, 'undeclared')})" for m in sorted(requires - provided)
    )
    return (
        f"rule {rule.name!r} needs {missing}; a KAN layer has B-spline coefficients "
        f"(in, out, G+k) on its edges, not a dense (out, in) weight matrix, and nodes that only "
        f"sum{hint}"
    )
