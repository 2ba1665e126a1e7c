"""Published setups as data: what a paper ran, what it reported, and how close a re-run must come.

A rule, architecture or task plugin declares the setups of its paper(s) in its class
attribute ``published_setups``. ``biobench reproduce`` lists them, runs the chosen
ones through the usual executors and compares the measured values with the
published ones (``leaderboard/REPRODUCTIONS.md``). A reproduction that disagrees is
shown as disagreeing, with :attr:`PaperSetup.notes` saying what is known about why;
setups are never tuned to agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class PublishedValue:
    """One number a paper reports, and how a re-run is compared with it.

    ``metric`` is a record metric read after training (``test_acc``, ``val_acc``,
    ``final_train_loss``...) or, with ``epoch`` set, the same entry of the per-epoch
    ``history`` at that epoch (1-based), for sources that publish learning curves; a
    dotted name reads inside a metric, and with ``epoch`` inside the point of that epoch
    of a curve (``feedback_angle_curve.per_layer.fc2``: the feedback angle of layer
    ``fc2`` after that epoch; ``signal_angle_curve.per_example.per_layer.fc1``).
    ``tolerance`` is absolute, in the metric's unit; ``what`` says exactly what the
    paper measured (e.g. "mean test error over 20 runs, as accuracy").
    """

    metric: str
    value: float
    tolerance: float
    what: str
    epoch: int | None = None


@dataclass(frozen=True)
class PaperSetup:
    """A published experiment: citation, source location, the exact configuration and its numbers.

    ``run`` holds budget options (``epochs``, ``batch_size``, ``validation``, subsets);
    ``optimizer`` the optimiser settings; the ``*_options`` the plugins' options.
    ``short_epochs`` is the number of epochs of the cheap ``--budget short`` run
    (compared with the published values whose ``epoch`` it reaches); ``seeds`` how
    many seeds a reproduction runs.
    """

    id: str
    citation: str
    source: str
    task: str
    architecture: str
    rule: str
    published: tuple[PublishedValue, ...]
    run: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    architecture_options: dict[str, Any] = field(default_factory=dict)
    rule_options: dict[str, Any] = field(default_factory=dict)
    profile: str = "full"
    seeds: int = 3
    short_epochs: int | None = None
    notes: str = ""

    def problems(self) -> list[str]:
        """What is wrong with this declaration (empty when it is usable)."""
        found = []
        if not _ID.match(self.id):
            found.append(f"setup id {self.id!r} is not lower-case letters, digits and '_.-'")
        if not self.citation.strip() or not self.source.strip():
            found.append(f"setup {self.id!r} needs a citation and the source of its numbers")
        if not self.published:
            found.append(f"setup {self.id!r} declares no published value")
        for value in self.published:
            if value.tolerance < 0 or not value.what.strip():
                found.append(f"setup {self.id!r}: value {value.metric} needs a tolerance >= 0 and what it measures")
        if self.seeds < 1:
            found.append(f"setup {self.id!r}: seeds must be at least 1")
        return found
