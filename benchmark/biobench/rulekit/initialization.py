"""Random initial matrices: the distributions architectures and rules draw their weights from.

One helper, :func:`init_matrix`, draws a ``(rows, columns)`` matrix from a named
scheme with a scale ``s``, from an explicit generator. A matrix is read in torch's
convention for a weight of shape ``(out, in)``: ``fan_in = columns``,
``fan_out = rows``.

========================  =============================================================
scheme                    distribution
========================  =============================================================
``default``               U(-s/sqrt(n), s/sqrt(n)), ``n = default_fan_in`` (``columns``
                          unless given): PyTorch's ``nn.Linear`` bound for ``s = 1``
``uniform``               U(-s, s): ``s`` is the bound itself
``gaussian``              N(0, s^2): ``s`` is the standard deviation itself
``xavier_uniform``        U(-a, a), a = s sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)
``xavier_normal``         N(0, s^2 * 2 / (fan_in + fan_out)) (Glorot & Bengio 2010)
``kaiming_uniform``       U(-a, a), a = s sqrt(6 / fan_in) (He et al. 2015, ReLU gain sqrt 2)
``kaiming_normal``        N(0, s^2 * 2 / fan_in) (He et al. 2015)
``zero``                  all zeros (``s`` unused)
========================  =============================================================

``xavier_*`` and ``kaiming_*`` are ``torch.nn.init``'s functions (gain ``s`` for
Xavier; Kaiming's bound or standard deviation multiplied by ``s``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from biobench.plugin_api.hyperparameters import Hyperparameter
from biobench.plugin_api.layers import PlasticLinear

#: Every initialisation scheme, with the distribution it draws from (``s`` the scale).
INIT_SCHEMES: dict[str, str] = {
    "default": "U(-s/sqrt(fan_in), s/sqrt(fan_in)): PyTorch's nn.Linear initialisation for s = 1",
    "uniform": "U(-s, s)",
    "gaussian": "N(0, s^2)",
    "xavier_uniform": "U(-a, a), a = s sqrt(6/(fan_in + fan_out)) (Glorot & Bengio 2010)",
    "xavier_normal": "N(0, 2 s^2/(fan_in + fan_out)) (Glorot & Bengio 2010)",
    "kaiming_uniform": "U(-a, a), a = s sqrt(6/fan_in) (He et al. 2015)",
    "kaiming_normal": "N(0, 2 s^2/fan_in) (He et al. 2015)",
    "zero": "all zeros",
}

#: How the biases of a dense layer are drawn: from the weights' distribution, or zero.
BIAS_INITS = ("same", "zero")

#: Glorot & Bengio (2010) and He et al. (2015), the sources of the Xavier and Kaiming schemes.
INIT_CITATIONS = (
    "Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
    "networks, AISTATS; He, Zhang, Ren & Sun (2015), Delving deep into rectifiers, ICCV"
)


def init_bound_or_std(scheme: str, scale: float, rows: int, columns: int, default_fan_in: int | None = None) -> float:
    """The bound (uniform schemes) or standard deviation (Gaussian schemes) of ``scheme``; 0 for ``zero``."""
    fan_in, fan_out = columns, rows
    if scheme == "default":
        return scale / float(default_fan_in if default_fan_in is not None else fan_in) ** 0.5
    if scheme in ("uniform", "gaussian"):
        return scale
    if scheme == "xavier_uniform":
        return scale * (6.0 / (fan_in + fan_out)) ** 0.5
    if scheme == "xavier_normal":
        return scale * (2.0 / (fan_in + fan_out)) ** 0.5
    if scheme == "kaiming_uniform":
        return scale * (6.0 / fan_in) ** 0.5
    if scheme == "kaiming_normal":
        return scale * (2.0 / fan_in) ** 0.5
    if scheme == "zero":
        return 0.0
    raise ValueError(f"unknown initialisation {scheme!r}; known: {', '.join(INIT_SCHEMES)}")


def init_matrix(
    rows: int,
    columns: int,
    scheme: str,
    scale: float,
    generator: torch.Generator,
    default_fan_in: int | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """A ``(rows, columns)`` float32 matrix drawn from ``scheme`` with scale ``scale`` (module docstring).

    ``default_fan_in`` sets ``n`` of the ``default`` scheme (``columns`` if None); the
    other schemes take their fans from the shape. The matrix is made on ``device``
    (default: the CPU), which must be ``generator``'s. Raises ValueError for an unknown
    scheme, a scale that is not positive and finite, or an empty shape.
    """
    if rows < 1 or columns < 1:
        raise ValueError(f"a matrix needs positive dimensions, got ({rows}, {columns})")
    if not (scale > 0.0 and scale != float("inf")):
        raise ValueError(f"initialisation scale must be positive and finite, got {scale!r}")
    if scheme == "default":
        # the arithmetic of biobench's original feedback matrices, kept bit for bit
        bound = init_bound_or_std(scheme, scale, rows, columns, default_fan_in)
        return (torch.rand(rows, columns, generator=generator, device=device) * 2.0 - 1.0) * bound
    matrix = torch.empty(rows, columns, device=device)
    if scheme == "uniform":
        return matrix.uniform_(-scale, scale, generator=generator)
    if scheme == "gaussian":
        return matrix.normal_(0.0, scale, generator=generator)
    if scheme == "xavier_uniform":
        return torch.nn.init.xavier_uniform_(matrix, gain=scale, generator=generator)
    if scheme == "xavier_normal":
        return torch.nn.init.xavier_normal_(matrix, gain=scale, generator=generator)
    if scheme == "kaiming_uniform":
        return torch.nn.init.kaiming_uniform_(matrix, a=0.0, nonlinearity="relu", generator=generator).mul_(scale)
    if scheme == "kaiming_normal":
        return torch.nn.init.kaiming_normal_(matrix, a=0.0, nonlinearity="relu", generator=generator).mul_(scale)
    if scheme == "zero":
        return matrix.zero_()
    raise ValueError(f"unknown initialisation {scheme!r}; known: {', '.join(INIT_SCHEMES)}")


def init_vector(
    size: int, scheme: str, bound_or_std: float, generator: torch.Generator
) -> Tensor:
    """A ``(size,)`` vector from the same family as ``scheme`` with the given bound or standard deviation.

    Uniform schemes draw U(-b, b), Gaussian ones N(0, b^2), ``zero`` gives zeros:
    the biases of a layer whose weights came from ``scheme``.
    """
    vector = torch.empty(size)
    if scheme == "zero" or bound_or_std == 0.0:
        return vector.zero_()
    if scheme in ("gaussian", "xavier_normal", "kaiming_normal"):
        return vector.normal_(0.0, bound_or_std, generator=generator)
    if scheme in ("default", "uniform", "xavier_uniform", "kaiming_uniform"):
        return vector.uniform_(-bound_or_std, bound_or_std, generator=generator)
    raise ValueError(f"unknown initialisation {scheme!r}; known: {', '.join(INIT_SCHEMES)}")


def initialize_linear(
    layer: PlasticLinear, scheme: str, scale: float, generator: torch.Generator, bias: str = "same"
) -> None:
    """Draw a dense layer's ``weight`` (out, in) and ``bias`` in place from ``scheme`` with scale ``scale``.

    ``default`` keeps the layer's own ``nn.Linear`` draw (weights and biases
    U(-1/sqrt(in), 1/sqrt(in)), made when the layer was built) and multiplies it by
    ``scale``; the other schemes draw the weight with :func:`init_matrix`. ``bias``
    ``same`` draws the biases from the weights' distribution (the same bound or
    standard deviation, as ``nn.Linear`` does), ``zero`` sets them to 0.
    """
    if bias not in BIAS_INITS:
        raise ValueError(f"unknown bias initialisation {bias!r}; known: {', '.join(BIAS_INITS)}")
    rows, columns = layer.weight.shape
    with torch.no_grad():
        if scheme == "default":
            if scale != 1.0:
                layer.weight.mul_(scale)
                if layer.bias is not None:
                    layer.bias.mul_(scale)
        else:
            layer.weight.copy_(init_matrix(rows, columns, scheme, scale, generator))
            if layer.bias is not None:
                spread = init_bound_or_std(scheme, scale, rows, columns)
                layer.bias.copy_(init_vector(rows, scheme, spread, generator))
        if bias == "zero" and layer.bias is not None:
            layer.bias.zero_()


def weight_init_options(
    default_source: str = (
        "PyTorch's nn.Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases"
    ),
) -> dict[str, Hyperparameter]:
    """The ``init``, ``init_scale`` and ``bias_init`` options of an architecture of dense layers.

    Their values go to :func:`initialize_linear`, layer by layer.
    """
    return {
        "init": Hyperparameter(
            "default", f"{default_source}; the other schemes: {INIT_CITATIONS}", choices=tuple(INIT_SCHEMES)
        ),
        "init_scale": Hyperparameter(
            1.0,
            "s = 1 leaves the default draw unchanged; s is the factor of the default bound, the bound "
            "of uniform, the standard deviation of gaussian, the gain of xavier and kaiming",
            minimum=0.0,
            exclusive_minimum=True,
        ),
        "bias_init": Hyperparameter(
            "same", "biases from the weights' distribution, as nn.Linear draws them", choices=BIAS_INITS
        ),
    }
