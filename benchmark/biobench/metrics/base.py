"""The metric base class, measurement settings, and the result type every metric returns.

Each metric is a :class:`Metric` subclass and the one place that knows it:

* its :class:`MetricDefinition` states, once, what it measures, its formula, sign
  convention, epsilon, what it is averaged over, its unit and when it is measured
  (appended to the class docstring and rendered into the README's metric table);
* its record keys, with the JSON schema of their values (``schemas``), from which
  records are validated;
* its leaderboard :class:`Column` objects: how to read the value from a record,
  its number format, how seeds are aggregated and the tolerance ``--compare`` uses;
* its report figures (:class:`CurveFigure` and relatives), which the report draws.

The leaderboard, the report, the README table and the record validation read all
of it from :mod:`biobench.metrics.catalog`, so adding a metric is one new module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

#: Inputs of the harness's perturbation budgets, as fractions of the [0, 1] pixel range.
FGSM_EPSILONS_255: tuple[int, ...] = (0, 4, 8, 12)


@dataclass(frozen=True)
class MeasurementSettings:
    """Probe sizes and constants shared by every pairing (stored in each record)."""

    #: Gradient bias and alignment probe: the first ``bias_examples`` training examples.
    bias_examples: int = 256
    #: Gradient-variance probe: the first ``snr_examples`` training examples, one update each.
    snr_examples: int = 32
    #: FGSM evaluation set: the first ``fgsm_examples`` test examples (2,000: a 95% interval
    #: of at most +-2.2 points on an accuracy).
    fgsm_examples: int = 2000
    #: FGSM perturbation sizes, in units of 1/255 of the pixel range.
    fgsm_epsilons_255: tuple[int, ...] = FGSM_EPSILONS_255
    #: Examples per forward pass when evaluating FGSM.
    fgsm_chunk: int = 1000

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        d = asdict(self)
        d["fgsm_epsilons_255"] = list(self.fgsm_epsilons_255)
        return d


#: The settings every pairing is measured with.
DEFAULT_SETTINGS = MeasurementSettings()


def fgsm_key(epsilon_255: int) -> str:
    """The record key of an FGSM perturbation size, e.g. ``8`` -> ``"8/255"``."""
    return f"{epsilon_255}/255"


class MetricUndefined(Exception):
    """A metric that cannot be computed for this pairing; the message is the recorded reason."""


@dataclass
class Outcome:
    """A metric's JSON-ready value and, for every part that is null, the reason.

    ``reasons`` maps a dotted path inside ``value`` (``""`` for the whole value,
    ``"per_layer.fc1"`` for one entry) to why that part could not be computed.
    """

    value: Any
    reasons: dict[str, str] = field(default_factory=dict)

    @classmethod
    def undefined(cls, reason: str) -> Outcome:
        """The whole metric is null for ``reason``."""
        return cls(None, {"": reason})

    def flat_reasons(self, key: str) -> dict[str, str]:
        """Reasons keyed for ``record["metric_reasons"]``: ``key`` or ``key.sub.path``."""
        return {(f"{key}.{path}" if path else key): why for path, why in self.reasons.items()}


@dataclass(frozen=True)
class MetricDefinition:
    """The one written definition of a metric: what, formula, sign, eps, averaging, unit, when."""

    keys: tuple[str, ...]
    measures: str
    formula: str
    sign: str
    eps: str
    averaging: str
    unit: str
    when: str
    null_when: str

    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("measures", "What"),
        ("formula", "Formula"),
        ("sign", "Sign convention"),
        ("eps", "Epsilon"),
        ("averaging", "Averaged over"),
        ("unit", "Unit"),
        ("when", "When"),
        ("null_when", "Null when"),
    )

    def as_docstring(self) -> str:
        """The definition as a docstring section."""
        lines = ["Definition", "----------", f"Record keys: {', '.join(self.keys)}."]
        for attr, title in self.FIELDS:
            lines.append(f"{title}: {getattr(self, attr)}")
        return "\n".join(lines)


#: JSON schemas of common metric values (for ``Metric.schemas``).
FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
NONNEGATIVE = {"type": "number", "minimum": 0}
COUNT = {"type": "integer", "minimum": 0}
ANGLE = {"type": "number", "minimum": 0, "maximum": 180}
COSINE = {"type": "number", "minimum": -1, "maximum": 1}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def per_layer_schema(entry: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A metric of the form ``{"per_layer": {layer: entry}, <extra keys>: entry...}`` (entries nullable)."""
    properties = {"per_layer": {"type": "object", "additionalProperties": nullable(entry)}}
    properties.update({k: nullable(v) for k, v in (extra or {}).items()})
    return {"type": "object", "required": ["per_layer"], "properties": properties}


def number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def scalar(metrics: dict[str, Any], key: str, entry: str = "overall") -> float | None:
    """A number stored under ``key``, or its ``entry`` when the value is a dict; None if absent or null."""
    value = metrics.get(key)
    if isinstance(value, dict):
        return number(value.get(entry))
    return number(value)


@dataclass(frozen=True)
class Column:
    """A leaderboard column derived from a metric.

    ``read`` takes one record's ``metrics`` and returns the value (None when
    undefined). Over the seeds that finished ``ok`` the values are aggregated by
    ``aggregate`` (``mean``, ``max`` or ``first``); ``spread`` adds a sample standard
    deviation column ``<key>_std`` (and the mean is ``<key>_mean``). Display:
    ``percent`` shows 100 x value with ``digits`` decimals, ``integer`` a
    thousands-separated whole number. ``tolerance`` (absolute, in the metric's unit)
    and ``relative_tolerance`` bound how far a fresh record may differ from the
    committed one in ``biobench leaderboard --compare``. ``order`` places the
    column among all metric columns; ``readme`` puts it in the README block.
    """

    key: str
    header: str
    help: str
    read: Callable[[dict[str, Any]], float | None]
    order: int
    digits: int = 3
    percent: bool = False
    integer: bool = False
    aggregate: str = "mean"
    spread: bool = False
    tolerance: float | None = None
    relative_tolerance: float | None = None
    readme: bool = False

    def format(self, value: float | None) -> str:
        """The value as the tables show it (``—`` when undefined)."""
        if value is None:
            return "—"
        if self.integer:
            return f"{int(value):,}"
        if self.percent:
            return f"{100 * value:.{self.digits}f}"
        return f"{value:.{self.digits}f}"


@dataclass(frozen=True)
class CurveFigure:
    """Report figure: ``key``'s curve points ``{epoch, <field>, per_layer}`` over training, one panel per layer."""

    key: str
    field: str
    stem: str
    section: str
    title: str
    ylabel: str
    caption: str
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class LayerBarsFigure:
    """Report figure: per-layer bars of ``key``'s ``per_layer`` entries, one bar per rule.

    ``path`` descends into nested values first (e.g. ``("initial", "snr_ratio")``);
    ``reference_key`` (optional) is drawn as a dashed line per layer (e.g. backprop's value).
    """

    key: str
    stem: str
    section: str
    title: str
    ylabel: str
    caption: str
    ylim: tuple[float, float] | None = None
    reference_key: str | None = None
    log_scale: bool = False
    path: tuple[str, ...] = ()
    reference_line: float | None = None


@dataclass(frozen=True)
class HistoryFigure:
    """Report figure: per-epoch ``history`` entries (``panels``: (entry, axis label, title)) per rule."""

    panels: tuple[tuple[str, str, str], ...]
    stem: str
    section: str
    title: str
    caption: str


@dataclass(frozen=True)
class SweepFigure:
    """Report figure: a value against a swept parameter, from ``points(metrics) -> [(x, y)]`` of record key ``key``."""

    key: str
    points: Callable[[dict[str, Any]], list[tuple[float, float]]]
    stem: str
    section: str
    title: str
    xlabel: str
    ylabel: str
    caption: str
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class ScatterFigure:
    """Report figure: one point per pairing (mean over its ok seeds) of ``y`` against each panel's x.

    ``panels`` are ``(read x from a record's metrics, axis label, log scale)``; one figure
    per task and profile, every architecture in it (colour: rule, marker: architecture).
    """

    y: Callable[[dict[str, Any]], float | None]
    ylabel: str
    panels: tuple[tuple[Callable[[dict[str, Any]], float | None], str, bool], ...]
    stem: str
    section: str
    title: str
    caption: str


class Metric:
    """Base class of metrics: a definition, record-key schemas, leaderboard columns and figures.

    Subclasses set ``definition``; it is appended to their docstring. Harness
    metrics are computed on the same weights and the same probe data for every
    pairing; a rule never reports its own metric. ``schemas`` maps each record key
    of the metric to the JSON schema its value must match (``null`` is always
    allowed, with a reason in ``metric_reasons``).
    """

    definition: ClassVar[MetricDefinition]
    #: Position of the metric in the README table (and among the catalog's metrics).
    order: ClassVar[int] = 100
    #: JSON schema of each record key's value (``null`` is allowed for every key).
    schemas: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Leaderboard columns read from this metric.
    columns: ClassVar[tuple[Column, ...]] = ()
    #: Report figures drawn from this metric.
    figures: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        definition = cls.__dict__.get("definition")
        if definition is not None:
            cls.__doc__ = f"{(cls.__doc__ or '').rstrip()}\n\n{definition.as_docstring()}\n"


def finite_or_none(value: float) -> float | None:
    """``value`` as a Python float, or ``None`` when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def cosine(u: Tensor, g: Tensor) -> float:
    """Cosine similarity ``<u, g> / (|u| |g|)`` of two flattened tensors, in float64.

    Raises :class:`MetricUndefined` when either vector is zero or not finite.
    """
    u = u.detach().reshape(-1).to(torch.float64)
    g = g.detach().reshape(-1).to(torch.float64)
    if u.shape != g.shape:
        raise MetricUndefined(f"vectors of different sizes ({u.numel()} and {g.numel()})")
    if not (torch.isfinite(u).all() and torch.isfinite(g).all()):
        raise MetricUndefined("a vector contains NaN or infinity")
    nu, ng = torch.linalg.vector_norm(u), torch.linalg.vector_norm(g)
    if nu == 0 or ng == 0:
        which = "both vectors are" if nu == 0 and ng == 0 else ("the first vector is" if nu == 0 else "the second vector is")
        raise MetricUndefined(f"{which} zero, so the cosine is undefined")
    value = float(torch.dot(u, g) / (nu * ng))
    return max(-1.0, min(1.0, value))


def angle_deg(cos_value: float) -> float:
    """The angle in degrees whose cosine is ``cos_value`` (clamped to [-1, 1])."""
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_value))))
