"""Published versus measured: the reproduction table, rendered from reproduction records alone.

A reproduction record (written by ``biobench reproduce``) carries its setup in
``provenance.reproduction``: the setup's id, citation, source, budget, notes and
published values. For each published value the measured value of every seed is
read from the record (``history[metric]`` at the value's epoch when it names one, or
the point of that epoch of a curve such as ``feedback_angle_curve.per_layer.fc2``,
else the final ``metrics[metric]``), averaged over the seeds that finished ``ok``,
and compared: the reproduction *agrees* when |mean − published| ≤ tolerance,
*differs* otherwise, and is *not measured* when the budget did not reach the
value's epoch (or a final value under the ``short`` budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from biobench.metrics.base import number

VERDICTS = ("agrees", "differs", "not measured")
MARKDOWN_FILE = "REPRODUCTIONS.md"


@dataclass(frozen=True)
class Comparison:
    """One published value against the measured ones of a setup under a budget."""

    setup: str
    budget: str
    metric: str
    epoch: int | None
    published: float
    tolerance: float
    what: str
    measured: tuple[float, ...]
    seeds: int

    @property
    def mean(self) -> float | None:
        """The mean over seeds of the measured values (None when there is none)."""
        return sum(self.measured) / len(self.measured) if self.measured else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation over seeds (None for fewer than two)."""
        if len(self.measured) < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.measured) / (len(self.measured) - 1))

    @property
    def verdict(self) -> str:
        """``agrees``, ``differs`` or ``not measured``."""
        if self.mean is None:
            return "not measured"
        return "agrees" if abs(self.mean - self.published) <= self.tolerance + 1e-12 else "differs"


def reproduction_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """The setup a record reproduces (its ``provenance.reproduction``), or None."""
    value = (record.get("provenance") or {}).get("reproduction")
    return value if isinstance(value, dict) else None


def _lookup(value: Any, path: str) -> Any:
    """``value[k1][k2]...`` for a dotted ``path`` (``value`` itself for an empty path); None when absent."""
    for key in path.split(".") if path else ():
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _measured(record: dict[str, Any], metric: str, epoch: int | None, budget: str) -> float | None:
    """The record's value of ``metric`` (``name`` or ``name.path.into.it``), at ``epoch`` when one is named.

    With an epoch, a plain name reads ``history[name]`` at that epoch, and a curve
    (a list of ``{epoch, ...}`` points such as ``feedback_angle_curve``) the point of
    that epoch followed by the path (``feedback_angle_curve.per_layer.fc2``).
    """
    metrics = record["metrics"]
    name, _, path = metric.partition(".")
    if epoch is None:
        return number(_lookup(metrics.get(name), path)) if budget == "full" else None
    series = (metrics.get("history") or {}).get(name)
    if series is not None and not path:
        return number(series[epoch - 1]) if len(series) >= epoch else None
    curve = metrics.get(name)
    if isinstance(curve, list):
        for point in curve:
            if isinstance(point, dict) and point.get("epoch") == epoch:
                return number(_lookup(point, path))
    return None


def compare(records: list[dict[str, Any]]) -> list[Comparison]:
    """Every published value of every (setup, budget) in ``records`` against the measured values."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    setups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        setup = reproduction_of(r)
        if setup is None:
            continue
        key = (setup["setup"], setup["budget"])
        groups.setdefault(key, []).append(r)
        setups[key] = setup
    out = []
    for key in sorted(groups):
        setup, recs = setups[key], groups[key]
        ok = [r for r in recs if r["status"] == "ok"]
        for value in setup.get("published", []):
            measured = [_measured(r, value["metric"], value.get("epoch"), key[1]) for r in ok]
            out.append(Comparison(
                setup=key[0], budget=key[1], metric=value["metric"], epoch=value.get("epoch"),
                published=float(value["value"]), tolerance=float(value["tolerance"]), what=value["what"],
                measured=tuple(v for v in measured if v is not None), seeds=len(recs),
            ))
    return out


def regressions(fresh: list[dict[str, Any]], committed: list[dict[str, Any]]) -> list[str]:
    """Values that agreed in the committed records and no longer agree in the fresh ones."""
    before = {(c.setup, c.budget, c.metric, c.epoch): c for c in compare(committed)}
    problems = []
    for c in compare(fresh):
        old = before.get((c.setup, c.budget, c.metric, c.epoch))
        if old is not None and old.verdict == "agrees" and c.verdict != "agrees":
            where = f"{c.metric}" + (f" at epoch {c.epoch}" if c.epoch else "")
            problems.append(
                f"{c.setup} ({c.budget}): {where} agreed with the published {c.published:.4f} and now "
                f"{c.verdict} (measured {'—' if c.mean is None else f'{c.mean:.4f}'})"
            )
    return problems


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.2f}" if percent else f"{value:.4g}"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(records: list[dict[str, Any]], results_label: str) -> str:
    """``REPRODUCTIONS.md``: every setup's published values beside the measured ones, and its notes."""
    setups: dict[str, dict[str, Any]] = {}
    for r in records:
        setup = reproduction_of(r)
        if setup is not None:
            setups.setdefault(setup["setup"], setup)
    comparisons = compare(records)
    counts = {v: sum(c.verdict == v for c in comparisons) for v in VERDICTS}
    out = [
        "# biobench reproductions",
        "",
        f"Generated by `biobench reproduce --render` from the reproduction records in [`{results_label}`]({results_label}). "
        "Each row compares one published number with the mean over seeds of what biobench measures under the "
        "setup's configuration (`biobench reproduce --list` shows every setup). A reproduction *agrees* when the "
        "difference is within the tolerance the setup declares; one that *differs* is shown as differing, with "
        "what is known about why. Budget `short` runs the setup's first epochs and compares the values "
        "published for those epochs; `full` runs the whole setup.",
        "",
        f"{counts['agrees']} agree, {counts['differs']} differ, {counts['not measured']} not measured at the budgets run.",
        "",
        "| Setup | Budget | Value | Published | Measured (mean ± sd, seeds) | Difference | Tolerance | Verdict |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for c in comparisons:
        percent = c.metric.endswith("acc")
        what = c.metric + (f", epoch {c.epoch}" if c.epoch else "")
        measured = _fmt(c.mean, percent)
        if c.mean is not None:
            spread = "" if c.std is None else f" ± {_fmt(c.std, percent)}"
            measured = f"{measured}{spread} ({len(c.measured)}/{c.seeds})"
        diff = "—" if c.mean is None else (
            f"{100 * (c.mean - c.published):+.2f}" if percent else f"{c.mean - c.published:+.4g}"
        )
        out.append(
            f"| {_cell(c.setup)} | {c.budget} | {_cell(what)} | {_fmt(c.published, percent)} | {measured} | "
            f"{diff} | {_fmt(c.tolerance, percent)} | {c.verdict} |"
        )
    out += ["", "Accuracies are in percent, differences in percentage points.", ""]
    for name in sorted(setups):
        s = setups[name]
        out += [f"## {_cell(name)}", "", f"- **Source**: {_cell(s.get('citation', ''))}; {_cell(s.get('source', ''))}."]
        out += [f"- **Declared by**: {_cell(s.get('declared_by', ''))}."]
        for value in s.get("published", []):
            out.append(f"- **{_cell(value['metric'])}**: {_cell(value['what'])}.")
        if s.get("notes"):
            out.append(f"- **Notes**: {_cell(s['notes'])}")
        out.append("")
    return "\n".join(out)
