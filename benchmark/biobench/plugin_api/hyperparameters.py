"""Hyper-parameters: a default with its source, the values it may take, and the space a tuner searches.

Every option a plugin declares is a :class:`Hyperparameter`. Its type is the type of
its default (an ``int`` option takes whole numbers, a ``float`` option any number,
a ``bool`` only ``true``/``false``, a ``list`` a list of the default's element type);
``minimum``/``maximum`` (inclusive unless ``exclusive_minimum``) and ``choices``
bound it further. :meth:`Hyperparameter.check` applies all of that, so a bad value
on the command line is refused before any data is loaded.

``search`` declares the option tunable and the space ``biobench tune`` searches:
:class:`LogUniform`, :class:`Uniform`, :class:`IntRange` or :class:`Choice`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LogUniform:
    """Search uniformly in log space over [low, high]."""

    low: float
    high: float

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in tuned records)."""
        return {"distribution": "log-uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Uniform:
    """Search uniformly over [low, high]."""

    low: float
    high: float

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in tuned records)."""
        return {"distribution": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class IntRange:
    """Search the whole numbers low..high (inclusive)."""

    low: int
    high: int

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in tuned records)."""
        return {"distribution": "int", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Choice:
    """Search among a few values."""

    options: tuple[Any, ...]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (stored in tuned records)."""
        return {"distribution": "categorical", "options": list(self.options)}


SearchSpace = LogUniform | Uniform | IntRange | Choice


def _type_name(value: Any) -> str:
    return "a list" if isinstance(value, list) else type(value).__name__


@dataclass(frozen=True)
class Hyperparameter:
    """A default value with the source that justifies it, its allowed values and its search space."""

    value: Any
    source: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    search: SearchSpace | None = None

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it is allowed for this option (ints widened to float where the default is one).

        Raises ValueError naming the option, the value and what is allowed.
        """
        value = self._typed(name, value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"option {name}={value!r} is not one of {list(self.choices)}")
        for number in value if isinstance(value, list) else [value]:
            if isinstance(number, int | float) and not isinstance(number, bool):
                self._check_range(name, number)
        return value

    def _typed(self, name: str, value: Any) -> Any:
        default = self.value
        if default is None:
            return value
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
        elif isinstance(default, int):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif isinstance(default, float):
            if isinstance(value, int | float) and not isinstance(value, bool):
                if not math.isfinite(float(value)):
                    raise ValueError(f"option {name}={value!r} must be a finite number")
                return float(value)
        elif isinstance(default, str):
            if isinstance(value, str):
                return value
        elif isinstance(default, list):
            if isinstance(value, list):
                if default and value:
                    element = Hyperparameter(default[0], self.source)
                    return [element._typed(f"{name}[{i}]", v) for i, v in enumerate(value)]
                return value
        else:
            return value
        raise ValueError(
            f"option {name}={value!r} must be {_type_name(default)} like its default {default!r}"
        )

    def _check_range(self, name: str, number: float) -> None:
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.exclusive_minimum and number == low)):
            bound = f"> {low}" if self.exclusive_minimum else f">= {low}"
            raise ValueError(f"option {name}={number!r} must be {bound}")
        if high is not None and number > high:
            raise ValueError(f"option {name}={number!r} must be <= {high}")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the option (default, bounds, search space)."""
        out: dict[str, Any] = {"default": self.value, "source": self.source}
        if self.minimum is not None:
            out["minimum"] = self.minimum
            out["exclusive_minimum"] = self.exclusive_minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.search is not None:
            out["search"] = self.search.describe()
        return out


def check_options(declared: dict[str, Hyperparameter], given: dict[str, Any], owner: str) -> dict[str, Any]:
    """The defaults of ``declared`` updated with ``given``, every value checked; unknown keys raise."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"{owner} has no option(s) {unknown}; known: {sorted(declared)}")
    values = {k: h.value for k, h in declared.items()}
    for key, value in given.items():
        try:
            values[key] = declared[key].check(key, value)
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from None
    return values
