"""Run profiles: how long and on how much data every pairing trains.

``smoke`` takes seconds (tests), ``ci`` runs the whole grid in about 20 minutes on
2 CPU cores, ``full`` aims at paper-quality numbers. Architectures and rules may
adjust a profile for themselves through ``run_overrides`` (documented in their
plugin and stored in every record's config).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Training budget of a run; ``None`` subsets mean the whole split.

    ``threads`` is the number of torch threads every run of the profile uses,
    whatever executor runs it and however many runs share the machine: floating-point
    sums depend on it, so it is part of a run's configuration. ``validation`` False
    trains on the validation split too (e.g. all 60,000 MNIST training images, as
    papers do); validation metrics are then null and model selection is impossible.
    ``evaluate_test`` False keeps the test split untouched (tuning trials): test
    accuracy is then null.
    """

    name: str
    epochs: int
    batch_size: int
    train_subset: int | None
    val_subset: int | None
    test_subset: int | None
    description: str
    threads: int = 1
    validation: bool = True
    evaluate_test: bool = True

    def with_overrides(self, overrides: dict[str, Any]) -> Profile:
        """A copy with some fields replaced; unknown keys are an error."""
        unknown = set(overrides) - set(RUN_KEYS)
        if unknown:
            raise ValueError(f"unknown run option(s) {sorted(unknown)}; known: {sorted(RUN_KEYS)}")
        for key, value in overrides.items():
            _check_run_value(key, value)
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


RUN_KEYS = (
    "epochs", "batch_size", "train_subset", "val_subset", "test_subset", "threads", "validation", "evaluate_test",
)

PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", 1, 100, 2000, 500, 1000, "seconds per pairing, for tests"),
    "ci": Profile("ci", 3, 100, None, None, None, "the whole grid in about 20 minutes on 2 CPU cores"),
    "full": Profile("full", 20, 100, None, None, None, "paper-quality training"),
}


def _check_run_value(key: str, value: Any) -> None:
    if key in ("validation", "evaluate_test"):
        if not isinstance(value, bool):
            raise ValueError(f"run option {key}={value!r} must be true or false")
        return
    if value is None and key.endswith("_subset"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"run option {key}={value!r} must be a whole number >= 1")


def get_profile(name: str) -> Profile:
    """The profile called ``name``; unknown names list the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
