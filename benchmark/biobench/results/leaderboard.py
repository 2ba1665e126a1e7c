"""The leaderboard: one row per (task, architecture, rule, profile), rendered only from records.

``biobench leaderboard`` reads every record in ``leaderboard/results/`` and writes
``LEADERBOARD.md``, ``leaderboard.csv``, ``leaderboard.json`` (pandas), the
README block between :data:`README_START` and :data:`README_END`, the HTML
report (``report/``, :mod:`biobench.results.report`) and the static site (``site/``,
:mod:`biobench.results.site`). The metric columns, their
formats and their ``--compare`` tolerances come from the metric classes
(:func:`biobench.metrics.catalog.columns`). Rendering is deterministic (no timestamps, sorted input,
rounded numbers), so ``--check`` can compare the committed files with what the
committed records render to and fail on any hand edit.

Aggregation over seeds: accuracy and every metric are averaged over the seeds
whose run finished ``ok``; the accuracy's spread is the sample standard
deviation (``ddof=1``; undefined for one seed). A pairing is ``ok`` when all its
seeds are; otherwise its status is the most severe one among its seeds
(``failed`` > ``diverged`` > ``unsupported``) and the reason says how many seeds.
Within each architecture the reference rule (backprop) comes first, then the
pairings whose every seed finished ``ok`` by mean test accuracy, then those with
a diverged, failed or unsupported seed (in that order, each by accuracy).
"""

from __future__ import annotations

import difflib
import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biobench.metrics import catalog
from biobench.metrics.base import Column as MetricColumn
from biobench.results import records as records_mod
from biobench.results import report as report_mod
from biobench.results import reproductions, statistics, templating
from biobench.results import site as site_mod

README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"
TABLE_FILES = ("LEADERBOARD.md", "leaderboard.csv", "leaderboard.json")
REPORT_DIR = "report"
SITE_DIR = site_mod.SITE_DIR
SEVERITY = {"failed": 3, "diverged": 2, "unsupported": 1, "ok": 0}
#: Order of rows within an architecture, after the reference rule: by status, then accuracy.
ROW_ORDER = {"ok": 0, "diverged": 1, "failed": 2, "unsupported": 3}
DECIMALS = 6
#: The column the rows are ranked by within an architecture (its mean over ok seeds).
RANK_COLUMN = "test_acc"

IDENTITY_COLUMNS = (
    "task", "architecture", "rule", "profile", "track", "config_id", "variant", "family", "reference",
    "status", "reason", "seeds", "seeds_ok",
)
#: Columns of the statistics of the ranking column over seeds.
STATISTICS_COLUMNS = ("test_acc_ci_low", "test_acc_ci_high", "vs_reference_diff", "vs_reference_p", "vs_reference")
TRACK_ORDER = {"tuned": 0, "default": 1}
PROVENANCE_COLUMNS = (
    "weight_transport", "global_error", "rule_distribution", "rule_version",
    "architecture_distribution", "architecture_version",
)


def metric_columns() -> tuple[MetricColumn, ...]:
    """The leaderboard's metric columns, from the metric classes."""
    return catalog.columns()


def table_columns() -> tuple[str, ...]:
    """Columns of the CSV / JSON tables, in order."""
    names: list[str] = list(IDENTITY_COLUMNS)
    for col in metric_columns():
        names += [f"{col.key}_mean", f"{col.key}_std"] if col.spread else [col.key]
        if col.key == RANK_COLUMN:
            names += list(STATISTICS_COLUMNS)
    return (*names, *PROVENANCE_COLUMNS)


def integer_columns() -> tuple[str, ...]:
    """Columns holding whole numbers (kept integral in CSV / JSON even next to nulls)."""
    return ("seeds", "seeds_ok", *(c.key for c in metric_columns() if c.integer))


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------


def load_records(results_dir: Path, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every record in ``results_dir`` (validated, sorted by run id); a missing folder is an error.

    JSON files that are not records are skipped, each named through ``warn``.
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {folder} does not exist")
    return records_mod.read_records(folder, warn=warn or (lambda message: None))


def variant_text(overrides: dict[str, dict[str, Any]]) -> str:
    """The options a configuration sets beyond the defaults, e.g. ``optimizer.lr=0.01``; ``defaults`` if none."""
    def shown(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else json.dumps(value, sort_keys=True)

    parts = [
        f"{kind}.{key}={shown(value)}"
        for kind, values in sorted((overrides or {}).items())
        for key, value in sorted(values.items())
    ]
    return ", ".join(parts) if parts else "defaults"


def is_primary(row: dict[str, Any]) -> bool:
    """Whether a row is its pairing's headline configuration: the defaults, or the tuned track's choice."""
    return row["track"] == "tuned" or row["variant"] == "defaults"


def _first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def _pairing_status(group: list[dict[str, Any]]) -> tuple[str, str]:
    worst = max(group, key=lambda r: (SEVERITY[r["status"]], -r["seed"]))
    status = worst["status"]
    if status == "ok":
        return "ok", ""
    same = [r for r in group if r["status"] == status]
    count = f"{len(same)}/{len(group)} seed{'s' if len(group) > 1 else ''} {status}"
    return status, f"{count}: {_first_line(worst['reason'])}"


def _aggregate(column: MetricColumn, values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if column.aggregate == "max":
        return max(present)
    if column.aggregate == "first":
        return present[0]
    return sum(present) / len(present)


def group_key(r: dict[str, Any]) -> tuple[str, ...]:
    """The key of the leaderboard row a record belongs to: pairing, profile, track and configuration."""
    return (
        r["task"], r["architecture"], r["rule"], r["profile"], r.get("track", "default"),
        records_mod.configuration_hash(r["config"]),
    )


def summarise(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The leaderboard as a DataFrame with :func:`table_columns`, one row per configuration, sorted.

    A row is one (task, architecture, rule, profile, track, configuration) over its
    seeds; ``config_id`` names the configuration (its hash without the seed) and
    ``variant`` says which options it sets beyond the defaults. The ranking column
    also gets its bootstrap interval and the paired comparison with the reference
    rule's default configuration on the same architecture, task, profile and track
    (:mod:`biobench.results.statistics`).
    """
    columns = metric_columns()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(group_key(r), []).append(r)
    rank = next((c for c in columns if c.key == RANK_COLUMN), None)
    by_seed: dict[tuple[str, ...], dict[int, float]] = {}
    rows = []
    for key, group in groups.items():
        task, arch, rule, profile, track, config_id = key
        group = sorted(group, key=lambda r: r["seed"])
        ok = [r for r in group if r["status"] == "ok"]
        status, reason = _pairing_status(group)
        flags = group[0].get("rule_flags") or {}
        cfg = group[0]["config"]
        row: dict[str, Any] = {
            "task": task, "architecture": arch, "rule": rule, "profile": profile, "track": track,
            "config_id": config_id, "variant": variant_text(group[0].get("overrides") or {}),
            "family": flags.get("family"),
            "reference": bool(flags.get("is_reference", False)),
            "status": status, "reason": reason,
            "seeds": len(group), "seeds_ok": len(ok),
            "weight_transport": flags.get("weight_transport"),
            "global_error": flags.get("global_error"),
            "rule_distribution": cfg["rule"]["distribution"], "rule_version": cfg["rule"]["version"],
            "architecture_distribution": cfg["architecture"]["distribution"],
            "architecture_version": cfg["architecture"]["version"],
        }
        for col in columns:
            values = [col.read(r["metrics"]) for r in ok]
            value = _aggregate(col, values)
            if col.integer and value is not None:
                value = int(value)
            if col.spread:
                present = [v for v in values if v is not None]
                row[f"{col.key}_mean"] = _round(value)
                row[f"{col.key}_std"] = (
                    _round(pd.Series(present, dtype="float64").std(ddof=1)) if len(present) > 1 else None
                )
            else:
                row[col.key] = value if col.integer else _round(value)
        if rank is not None:
            accs = {r["seed"]: rank.read(r["metrics"]) for r in ok}
            accs = {seed: v for seed, v in accs.items() if v is not None}
            by_seed[key] = accs
            interval = statistics.bootstrap_interval(list(accs.values()))
            row["test_acc_ci_low"], row["test_acc_ci_high"] = (
                (None, None) if interval is None else (_round(interval[0]), _round(interval[1]))
            )
        rows.append(row)
    _compare_with_reference(rows, groups, by_seed)
    frame = pd.DataFrame(rows, columns=list(table_columns()))
    for col in integer_columns():
        frame[col] = frame[col].astype("Int64")
    if frame.empty:
        return frame
    frame["_rank_track"] = frame["track"].map(lambda t: TRACK_ORDER.get(t, 9))
    frame["_rank_variant"] = frame["variant"] != "defaults"
    frame["_rank_ref"] = ~frame["reference"].astype(bool)
    frame["_rank_status"] = frame["status"].map(ROW_ORDER)
    frame["_rank_acc"] = -frame[f"{RANK_COLUMN}_mean"].astype("float64").fillna(-1.0)
    frame = frame.sort_values(
        ["task", "profile", "architecture", "_rank_track", "_rank_ref", "_rank_status", "_rank_acc",
         "rule", "_rank_variant", "variant"],
        kind="mergesort",
    )
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_rank")]).reset_index(drop=True)
    return frame.astype(object).where(frame.notna(), None)


def _compare_with_reference(
    rows: list[dict[str, Any]], groups: dict[tuple[str, ...], list[dict[str, Any]]],
    by_seed: dict[tuple[str, ...], dict[int, float]],
) -> None:
    """Fill the ``vs_reference*`` columns: paired test against the reference rule's headline configuration."""
    references: dict[tuple[str, ...], tuple[str, ...]] = {}
    for key, row in zip(groups, rows, strict=True):
        if row["reference"] and is_primary(row):
            references[(row["task"], row["architecture"], row["profile"], row["track"])] = key
    for key, row in zip(groups, rows, strict=True):
        row["vs_reference_diff"] = row["vs_reference_p"] = None
        row["vs_reference"] = ""
        ref_key = references.get((row["task"], row["architecture"], row["profile"], row["track"]))
        if ref_key is None or ref_key == key or not by_seed.get(key):
            continue
        ours, theirs = by_seed[key], by_seed.get(ref_key, {})
        common = sorted(set(ours) & set(theirs))
        if not common:
            continue
        diff = sum(ours[s] - theirs[s] for s in common) / len(common)
        test = statistics.paired_test(ours, theirs)
        row["vs_reference_diff"] = _round(diff)
        row["vs_reference_p"] = None if test is None else _round(test[0])
        row["vs_reference"] = statistics.verdict(diff, test)


# ---------------------------------------------------------------------------
# Formatting.
# ---------------------------------------------------------------------------


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell: HTML-escaped, pipes escaped, one line."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _flag(value: Any) -> str:
    return "—" if value is None else ("yes" if value else "no")


def spread_text(column: MetricColumn, row: dict[str, Any]) -> str:
    """``mean ± std`` of a spread column (``(n=1)`` for a single seed, ``—`` if none)."""
    mean, std = row[f"{column.key}_mean"], row[f"{column.key}_std"]
    if mean is None:
        return "—"
    if std is None:
        return f"{column.format(mean)} (n={row['seeds_ok']})"
    scale = 100 if column.percent else 1
    return f"{column.format(mean)} ± {scale * std:.{column.digits}f}"


def status_text(row: dict[str, Any]) -> str:
    """The status, with the seed count when not every seed shares it."""
    return row["status"] if row["status"] == "ok" else f"{row['status']} ({row['seeds'] - row['seeds_ok']}/{row['seeds']})"


@dataclass(frozen=True)
class Column:
    """A column of the human-readable tables: header, formatter and help text."""

    header: str
    render: Callable[[dict[str, Any]], str]
    help: str


def _display(column: MetricColumn) -> Column:
    if column.spread:
        return Column(column.header, lambda r: spread_text(column, r), column.help)
    return Column(column.header, lambda r: column.format(r[column.key]), column.help)


def interval_text(row: dict[str, Any]) -> str:
    """The 95% bootstrap interval of the mean test accuracy in percent, ``—`` when undefined."""
    low, high = row.get("test_acc_ci_low"), row.get("test_acc_ci_high")
    if low is None or high is None:
        return "—"
    return f"[{100 * low:.2f}, {100 * high:.2f}]"


def versus_text(row: dict[str, Any]) -> str:
    """The difference with the reference rule in points and the verdict of the paired test."""
    diff, p = row.get("vs_reference_diff"), row.get("vs_reference_p")
    if diff is None:
        return "—"
    text = f"{100 * diff:+.2f}"
    if p is not None:
        text += f" (p={p:.3f}, {row['vs_reference']})" if row["vs_reference"] else f" (p={p:.3f})"
    return text


def rule_text(row: dict[str, Any]) -> str:
    """The rule's name, ``(reference)`` for backprop, and the options of a non-default configuration."""
    text = row["rule"] + (" (reference)" if row["reference"] else "")
    return text if row["variant"] == "defaults" else f"{text} [{row['variant']}]"


def display_columns(readme: bool = False) -> tuple[Column, ...]:
    """The columns of the Markdown and HTML tables (``readme``: the README block's subset)."""
    rule = Column("Rule", rule_text, "learning rule plugin name, and the options of a non-default configuration")
    status = Column("Status", status_text, "ok / diverged / failed / unsupported (reasons below the table)")
    ci = Column("95% CI", interval_text, "95% percentile bootstrap interval of the mean test accuracy over ok seeds")
    versus = Column(
        "vs BP (pts)", versus_text,
        "mean difference with the reference rule's accuracy over common seeds, with the p-value of a paired "
        "t-test and its verdict at p < 0.05",
    )
    seeds = Column("Seeds", lambda r: f"{r['seeds_ok']}/{r['seeds']}", "seeds that finished ok / seeds run")
    metrics = [_display(c) for c in metric_columns() if c.readme or not readme]
    accuracy = next((i for i, c in enumerate(metric_columns()) if c.key == RANK_COLUMN), None)
    extra = (ci, versus) if not readme else (ci, versus)
    if accuracy is not None:
        metrics[accuracy + 1:accuracy + 1] = list(extra)
    if readme:
        return (rule, *metrics, status)
    return (
        rule, seeds, *metrics,
        Column("Weight transport", lambda r: _flag(r["weight_transport"]), "the rule sends errors back through the forward weights"),
        Column("Global error", lambda r: _flag(r["global_error"]), "the rule broadcasts an error computed at the output"),
        status,
        Column("Plugin", lambda r: f"{r['rule_distribution']} {r['rule_version']}", "distribution and version of the rule's plugin"),
    )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict(orient="records")


def _groups(frame: pd.DataFrame) -> list[tuple[tuple[str, str, str, str], list[dict[str, Any]]]]:
    out: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in _rows(frame):
        out.setdefault((row["task"], row["profile"], row["architecture"], row["track"]), []).append(row)
    return list(out.items())


def headline(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rules x architectures matrix of each (task, profile): test accuracy of the headline configurations.

    One matrix per track with rows for the (task, profile): the tuned track first
    (usually tuned on some architectures only), then the defaults track, which covers
    every architecture. Each entry: task, profile, track, architectures, and rows of
    ``{"rule", "family", "cells": {architecture: row or None}}``; a pairing without
    an ``ok`` result has its row with its status and reason, and a pairing never
    run has None.
    """
    out = []
    rows = [r for r in _rows(frame) if is_primary(r)]
    blocks = sorted({(r["task"], r["profile"], r["track"]) for r in rows}, key=lambda b: (b[0], b[1], TRACK_ORDER.get(b[2], 9)))
    for task, profile, track in blocks:
        here = [r for r in rows if (r["task"], r["profile"], r["track"]) == (task, profile, track)]
        architectures = sorted({r["architecture"] for r in here})
        cells: dict[str, dict[str, Any]] = {}
        families: dict[str, str | None] = {}
        references = set()
        for r in here:
            cells.setdefault(r["rule"], {})[r["architecture"]] = r
            families[r["rule"]] = r["family"]
            if r["reference"]:
                references.add(r["rule"])

        best = {
            rule: max(
                (c["test_acc_mean"] for c in by_arch.values() if c["status"] == "ok" and c["test_acc_mean"] is not None),
                default=-1.0,
            )
            for rule, by_arch in cells.items()
        }
        order = sorted(cells, key=lambda rule: (rule not in references, -best[rule], rule))
        out.append({
            "task": task, "profile": profile, "track": track, "architectures": architectures,
            "rows": [
                {"rule": rule, "family": families[rule], "cells": {a: cells[rule].get(a) for a in architectures}}
                for rule in order
            ],
        })
    return out


def cell_text(row: dict[str, Any] | None) -> str:
    """One matrix cell: mean accuracy with its interval; empty for a pairing without an ok result."""
    if row is None or row["status"] != "ok" or row["test_acc_mean"] is None:
        return ""
    interval = interval_text(row)
    return f"{100 * row['test_acc_mean']:.2f} {interval}" if interval != "—" else f"{100 * row['test_acc_mean']:.2f}"


def markdown_matrix(block: dict[str, Any]) -> str:
    """A headline matrix as a Markdown table (rules x architectures)."""
    lines = [
        "| Rule | " + " | ".join(_md(a) for a in block["architectures"]) + " |",
        "|---|" + "--:|" * len(block["architectures"]),
    ]
    for row in block["rows"]:
        cells = [_md(cell_text(row["cells"][a])) for a in block["architectures"]]
        lines.append(f"| {_md(row['rule'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]], columns: tuple[Column, ...]) -> str:
    """A GitHub Markdown table of ``rows`` with ``columns`` (cells escaped)."""
    lines = [
        "| " + " | ".join(c.header for c in columns) + " |",
        "|" + "|".join("---" if i == 0 else "--:" for i in range(len(columns))) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_md(c.render(row)) for c in columns) + " |")
    return "\n".join(lines)


def provenance(records: list[dict[str, Any]]) -> str:
    """Which records the tables come from: how many, their profiles and seeds (and devices, unless only the CPU)."""
    profiles = sorted({r["profile"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    devices = sorted({records_mod.device_of(r) for r in records if r["status"] != "unsupported"})
    where = f"; devices {', '.join(devices)}" if devices and devices != ["cpu"] else ""  # CPU alone: unsaid
    return (
        f"{len(records)} records (profile{'s' if len(profiles) > 1 else ''} {', '.join(profiles) or '—'}; "
        f"seeds {', '.join(map(str, seeds)) or '—'}{where})"
    )


TRACK_TITLES = {"default": "defaults track", "tuned": "tuned track"}


def _matrix_section(frame: pd.DataFrame, heading: str) -> list[str]:
    out = []
    for block in headline(frame):
        out += [
            f"{heading} Which rules suit which architectures: test accuracy (%) — task {_md(block['task'])}, "
            f"profile {_md(block['profile'])}, {TRACK_TITLES.get(block['track'], block['track'])}",
            "",
            "Mean over seeds with its 95% bootstrap interval; an empty cell is a pairing that is unsupported "
            "or did not finish (the tables below say why).",
            "",
            markdown_matrix(block),
            "",
        ]
    return out


def render_markdown(frame: pd.DataFrame, records: list[dict[str, Any]], results_label: str) -> str:
    """The full ``LEADERBOARD.md`` text."""
    out = [
        "# biobench leaderboard",
        "",
        f"Generated by `biobench leaderboard` from {provenance(records)} in "
        f"[`{results_label}`]({results_label}). "
        "Do not edit: CI fails when this file differs from what the records render to "
        "(`biobench leaderboard --check`).",
        "",
    ]
    if frame.empty:
        out += ["No records yet.", ""]
    out += _matrix_section(frame, "##")
    for (task, profile, arch, track), rows in _groups(frame):
        out += [f"## {_md(arch)} — task {_md(task)}, profile {_md(profile)}, {TRACK_TITLES.get(track, track)}", ""]
        out += [markdown_table(rows, display_columns()), ""]
        notes = [r for r in rows if r["reason"]]
        if notes:
            out += ["Reasons:", ""]
            out += [f"- **{_md(rule_text(r))}**: {_md(r['reason'])}" for r in notes]
            out += [""]
    out += ["## Columns", ""]
    out += [f"- **{_md(c.header)}**: {_md(c.help)}." for c in display_columns()]
    out += [
        "",
        "Metrics are averaged over the seeds that finished `ok`; `—` marks a metric that is "
        "undefined for the pairing or was not measured (the record's `metric_reasons` says why). "
        "Within each architecture and track the reference rule comes first, then the pairings whose every "
        "seed finished `ok`, by mean test accuracy, then those with a diverged, failed or unsupported seed. "
        "A row is one configuration: the rule's name is followed by the options it sets beyond the defaults. "
        "Figures and representational geometry: [report/index.html](report/index.html).",
        "",
    ]
    return "\n".join(out)


def render_readme_block(
    frame: pd.DataFrame, records: list[dict[str, Any]],
    results_label: str = "leaderboard/results", table_label: str = "leaderboard/LEADERBOARD.md",
) -> str:
    """The README section between the markers (markers included); labels are paths from the README."""
    columns = display_columns(readme=True)
    out = [README_START, "", f"Rendered from {provenance(records)} in [`{results_label}/`]({results_label}).", ""]
    if frame.empty:
        out += ["No records yet.", ""]
    out += _matrix_section(frame, "####")
    for (task, profile, arch, track), rows in _groups(frame):
        out += [f"**{_md(arch)}** (task {_md(task)}, profile {_md(profile)}, {TRACK_TITLES.get(track, track)})", ""]
        out += [markdown_table(rows, columns), ""]
    out += [
        f"All columns, reasons and plots: [{table_label}]({table_label}).",
        "",
        README_END,
    ]
    return "\n".join(out)


def html_table(frame: pd.DataFrame) -> str:
    """The leaderboard as HTML tables, one per architecture and track (Jinja2 template, every cell escaped)."""
    columns = display_columns()
    groups = [
        {
            "task": task, "profile": profile, "architecture": arch, "track": TRACK_TITLES.get(track, track),
            "rows": [{"reference": row["reference"], "cells": [c.render(row) for c in columns]} for row in rows],
            "notes": [(rule_text(r), r["reason"]) for r in rows if r["reason"]],
        }
        for (task, profile, arch, track), rows in _groups(frame)
    ]
    return templating.render("leaderboard_table.html.j2", groups=groups, columns=columns).strip()


def render_csv(frame: pd.DataFrame) -> str:
    """The CSV table (all :func:`table_columns`)."""
    return frame.to_csv(index=False, lineterminator="\n")


def render_json(frame: pd.DataFrame) -> str:
    """The JSON table: a list of row objects with :func:`table_columns`."""
    rows = json.loads(frame.to_json(orient="records", double_precision=10))
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------
# Writing and checking.
# ---------------------------------------------------------------------------


def replace_readme_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``; the markers must exist once."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < 0 or end < start or readme.count(README_START) != 1:
        raise ValueError(
            f"README has no single '{README_START}' ... '{README_END}' block; add the two markers "
            "where the leaderboard belongs"
        )
    return readme[:start] + block + readme[end + len(README_END):]


@dataclass
class Rendered:
    """Everything ``biobench leaderboard`` writes, as text, keyed by path relative to ``out_dir``."""

    files: dict[str, str]
    readme_block: str
    frame: pd.DataFrame
    records: list[dict[str, Any]]


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def render(results_dir: Path, out_dir: Path, readme: Path | None = None) -> Rendered:
    """Render the tables of the records in ``results_dir`` (nothing is written).

    Paths printed in the outputs are relative to the file that prints them, so
    the text does not depend on the working directory.
    """
    recs = load_records(results_dir)
    frame = summarise(recs)
    files = {
        "LEADERBOARD.md": render_markdown(frame, recs, _relative(results_dir, out_dir)),
        "leaderboard.csv": render_csv(frame),
        "leaderboard.json": render_json(frame),
    }
    base = Path(readme).parent if readme is not None else Path.cwd()
    block = render_readme_block(
        frame, recs, _relative(results_dir, base), _relative(Path(out_dir) / "LEADERBOARD.md", base)
    )
    return Rendered(files, block, frame, recs)


def site_board(rendered: Rendered, results_dir: Path, out_dir: Path) -> site_mod.Board:
    """What the site shows of the rendered leaderboard (the site knows nothing else of it)."""
    return site_mod.Board(
        records=rendered.records, frame=rendered.frame, matrix=headline(rendered.frame), columns=display_columns(),
        label=rule_text, provenance=provenance(rendered.records), track_titles=TRACK_TITLES,
        results_dir=Path(results_dir), reproductions_dir=Path(out_dir) / REPRODUCTIONS_DIR, rank_key=RANK_COLUMN,
    )


def write(results_dir: Path, out_dir: Path, readme: Path | None, report: bool = True, site: bool = True) -> list[str]:
    """Write the tables, the README block (if ``readme`` exists), the report and the site; returns notes."""
    rendered = render(results_dir, out_dir, readme)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    for name, text in rendered.files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    if readme is not None:
        if readme.exists():
            readme.write_text(replace_readme_block(readme.read_text(encoding="utf-8"), rendered.readme_block), encoding="utf-8")
        else:
            notes.append(f"{readme} does not exist; README block not written")
    repro = reproduction_table(out_dir)
    if repro is not None:
        (out_dir / reproductions.MARKDOWN_FILE).write_text(repro, encoding="utf-8")
    if report:
        notes += report_mod.build_report(
            rendered.records, out_dir / REPORT_DIR, table_html=html_table(rendered.frame),
            provenance=provenance(rendered.records),
        )
    if site:
        notes += site_mod.build_site(site_board(rendered, results_dir, out_dir), out_dir / SITE_DIR)
    return notes


def _diff(name: str, expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(
        actual.splitlines(), expected.splitlines(), f"{name} (committed)", f"{name} (rendered)", lineterm="", n=1
    ))
    shown = "\n".join(lines[:40])
    return shown + ("\n..." if len(lines) > 40 else "")


def check(results_dir: Path, out_dir: Path, readme: Path | None) -> list[str]:
    """Differences between the committed outputs and what the records render to (empty: up to date).

    Checked exactly: the three tables, the README block (when the README exists)
    and the leaderboard table inside ``report/index.html``. The PNG figures are
    only checked to exist: their bytes depend on the font and image libraries.
    The site (``site/``) is re-rendered and compared file by file
    (:func:`biobench.results.site.check_site`).
    """
    rendered = render(results_dir, out_dir, readme)
    out_dir = Path(out_dir)
    problems = []
    for name, text in rendered.files.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path} is missing; run `biobench leaderboard`")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} differs from what the records render to:\n" + _diff(name, text, path.read_text(encoding="utf-8")))
    if readme is not None and readme.exists():
        current = readme.read_text(encoding="utf-8")
        try:
            expected = replace_readme_block(current, rendered.readme_block)
        except ValueError as exc:
            problems.append(f"{readme}: {exc}")
        else:
            if expected != current:
                problems.append(f"{readme}: the leaderboard block is stale:\n" + _diff(str(readme), expected, current))
    problems += report_mod.check_report(out_dir / REPORT_DIR, html_table(rendered.frame))
    problems += site_mod.check_site(site_board(rendered, results_dir, out_dir), out_dir / SITE_DIR)
    repro = reproduction_table(out_dir)
    path = out_dir / reproductions.MARKDOWN_FILE
    if repro is not None and (not path.exists() or path.read_text(encoding="utf-8") != repro):
        problems.append(f"{path} differs from what the reproduction records render to; run `biobench reproduce --render`")
    return problems


REPRODUCTIONS_DIR = "reproductions"


def reproduction_table(out_dir: Path) -> str | None:
    """``REPRODUCTIONS.md`` rendered from ``out_dir/reproductions/`` (None when there is no such folder)."""
    folder = Path(out_dir) / REPRODUCTIONS_DIR
    if not folder.is_dir():
        return None
    return reproductions.render_markdown(records_mod.read_records(folder, warn=lambda m: None), REPRODUCTIONS_DIR)


# ---------------------------------------------------------------------------
# Fresh records against committed ones.
# ---------------------------------------------------------------------------

def compare_records(fresh: list[dict[str, Any]], committed: list[dict[str, Any]]) -> list[str]:
    """Disagreements between fresh records and the committed ones of the same run id.

    Every fresh record must have a committed counterpart with the same status
    and, when both are ok, metrics within the tolerances their columns declare
    (``Column.tolerance``, absolute, and ``Column.relative_tolerance``; set from the
    spread over seeds, see the README). A metric present on one side only is a
    disagreement too. Committed pairings missing from the fresh run (for the
    fresh seeds, profiles and tracks: a fresh defaults grid says nothing about the
    tuned track) are reported, so a removed plugin cannot leave stale rows.
    """
    problems: list[str] = []
    by_id = {r["run_id"]: r for r in committed}
    fresh_ids = {r["run_id"] for r in fresh}
    seeds = {r["seed"] for r in fresh}
    profiles = {r["profile"] for r in fresh}
    tracks = {r.get("track", "default") for r in fresh}
    for r in fresh:
        old = by_id.get(r["run_id"])
        if old is None:
            problems.append(f"{r['run_id']}: no committed record; regenerate the leaderboard")
            continue
        if r["status"] != old["status"]:
            problems.append(f"{r['run_id']}: status {r['status']} (fresh) vs {old['status']} (committed)")
            continue
        if r["status"] != "ok":
            continue
        if r["config_hash"] != old["config_hash"]:
            problems.append(f"{r['run_id']}: configuration changed (config hash {r['config_hash']} vs {old['config_hash']})")
        for column in metric_columns():
            if column.tolerance is None and column.relative_tolerance is None:
                continue
            col = column.key
            new_value, old_value = column.read(r["metrics"]), column.read(old["metrics"])
            if new_value is None and old_value is None:
                continue
            if (new_value is None) != (old_value is None):
                problems.append(f"{r['run_id']}: {col} is {new_value} (fresh) vs {old_value} (committed)")
                continue
            diff = abs(new_value - old_value)
            if column.tolerance is not None and diff > column.tolerance:
                problems.append(
                    f"{r['run_id']}: {col} {new_value:.4f} (fresh) vs {old_value:.4f} (committed), "
                    f"|diff| {diff:.4f} > {column.tolerance}"
                )
            if column.relative_tolerance is not None and diff > column.relative_tolerance * abs(old_value):
                problems.append(
                    f"{r['run_id']}: {col} {new_value:.4f} (fresh) vs {old_value:.4f} (committed), "
                    f"relative diff {diff / abs(old_value):.3f} > {column.relative_tolerance}"
                )
    for old in committed:
        stale = old["seed"] in seeds and old["profile"] in profiles and old.get("track", "default") in tracks
        if stale and old["run_id"] not in fresh_ids:
            problems.append(f"{old['run_id']}: committed but not produced by the fresh run (stale record)")
    return problems
