"""The one way measurements reach a record: :class:`Measurement` objects driven by the training loop.

For every run the harness builds one :class:`Measurement` per factory (each gets
the run's :class:`RunState`) and calls, in this order: :meth:`~Measurement.at_start`
before the first update, :meth:`~Measurement.after_epoch` after every epoch (outside
the epoch's timer), :meth:`~Measurement.at_end` after the last epoch, and
:meth:`~Measurement.contribute` once, also when training stopped early
(``finished`` is False then), to add its record entries and the reasons of the null
ones. Measurements must leave training as they found it (see
:class:`biobench.metrics.state.TrainingState`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunState:
    """What a measurement may look at during one run.

    ``history`` is the training loop's per-epoch record (``val_acc`` etc., filled at
    the end of each epoch, before :meth:`Measurement.after_epoch` is called);
    ``provenance`` where the run comes from (e.g. ``{"trial": ...}`` for a tuning trial).
    """

    seed: int
    network: Any
    rule: Any
    task: Any
    data: Any
    profile: Any
    history: dict[str, list[Any]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


class StopRun(Exception):
    """Raised by a measurement to end its run early with a status of its own (e.g. ``pruned``) and a reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Measurement(abc.ABC):
    """Something measured on every run; it contributes entries to the run's record."""

    def at_start(self, step: int) -> None:  # noqa: B027 (optional hook)
        """Before the first update (``step`` updates done: 0)."""

    def after_epoch(self, epoch: int, step: int) -> None:  # noqa: B027 (optional hook)
        """After epoch ``epoch`` (1-based) but the last, ``step`` updates done."""

    def at_end(self, epochs: int, step: int) -> None:  # noqa: B027 (optional hook)
        """After the last epoch (``epochs`` completed, ``step`` updates done)."""

    @abc.abstractmethod
    def contribute(self, metrics: dict[str, Any], reasons: dict[str, str], finished: bool) -> None:
        """Add this measurement's entries to ``metrics`` (null ones with a reason in ``reasons``)."""
