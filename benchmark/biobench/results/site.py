"""The leaderboard as a static website: interactive figures, sortable tables, one page per configuration.

``biobench leaderboard`` writes ``site/`` beside the tables, from the same records:

* ``index.html``: the rules x architectures matrix of every task and profile (the
  leaderboard's headline): mean test accuracy with its 95% bootstrap interval, coloured
  on one scale per matrix; hovering (or focusing) a cell shows every leaderboard column
  of the pairing (bias, SNR ratio, angles, cost...) with its status and reason; an
  unsupported pairing is an empty cell whose tooltip gives the reason; a cell links to
  the pairing's page.
* ``tables.html``: one table per task, profile, architecture and track with every
  leaderboard column; a click on a header sorts by it, and filters (rule family,
  locality flags, status, track, name) hide rows.
* ``pairings/<id>.html``: one page per configuration row: its figures over seeds (the
  ones the metric classes declare, :func:`biobench.metrics.catalog.figures`: learning
  curves, bias and angles over training per layer, FGSM curve...), its seed-averaged
  RDMs, its configuration, overrides and provenance, and links to its record files.
* ``compare/<id>.html``: the same figures with one line per rule, for each architecture.
* ``geometry.html``: the 2-D MDS map of the pairings' representational geometry
  (:func:`biobench.results.geometry.analyse`) per depth slot, with hover labels and the
  stress, and the RDM similarity matrix.
* ``reproductions.html``: published against measured values
  (:func:`biobench.results.reproductions.compare`), when reproduction records exist.
* ``data.json`` (rows, matrix, reproductions) and ``geometry.json`` (the analysis): the
  site's data; ``records/`` and ``reproductions/``: byte copies of the record files.

Nothing is loaded from another host: the pages use ``assets/site.css``, ``assets/site.js``
(sorting, filtering, tooltips, drawing) and ``assets/plotly.min.js``, copied from the
installed ``plotly`` package. Each figure is a Plotly JSON specification inside its page
(``<script type="application/json">``), since browsers refuse ``fetch`` from the file
system; all links are relative, so the folder opens from disk and from any static host.
Every string from a record is escaped (Jinja2 autoescaping; JSON with ``<``, ``>`` and
``&`` as Unicode escapes; figure labels HTML-escaped for Plotly's text renderer).

Figures read at a glance: loss panels use a log axis, and values more than
:data:`LOSS_CLIP_FACTOR` times the panel's median are drawn at the top edge (hover gives
the value; the caption says so); a diverged seed is drawn up to its last finite value and
marked with an x at its divergence epoch, and named in the legend; epochs are integer ticks;
legends sit to the right of the panels and list every rule (or seed) once.

**Determinism and checking.** Rendering is a pure function of the records (sorted input,
rounded numbers, sequential ids, no timestamps), so :func:`check_site` re-renders the site
and compares every file with the committed one: exactly, except the files of
:data:`TOLERANT_FILES`, whose numbers come from the iterative MDS fit and may differ in
their last digits between numerical libraries (compared within :data:`GEOMETRY_TOLERANCE`).
The record copies must be byte-identical to the records; the Plotly bundle must exist
(its bytes depend on the installed ``plotly``). Files the records do not produce are stale.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biobench.metrics import catalog
from biobench.metrics.base import (
    CurveFigure,
    HistoryFigure,
    LayerBarsFigure,
    ScatterFigure,
    SweepFigure,
)
from biobench.results import geometry as rsa
from biobench.results import records as records_mod
from biobench.results import report as report_mod
from biobench.results import reproductions as repro_mod
from biobench.results import templating

SITE_DIR = "site"
ASSETS_DIR = "assets"
PLOTLY_BUNDLE = f"{ASSETS_DIR}/plotly.min.js"
STATIC_FILES = ("site.css", "site.js")
PAIRINGS_DIR = "pairings"
COMPARE_DIR = "compare"
RECORDS_DIR = "records"
REPRODUCTION_RECORDS_DIR = "reproductions"
DATA_FILE = "data.json"
GEOMETRY_FILE = "geometry.json"
#: Files whose numbers come from the iterative MDS fit: compared within a tolerance by ``--check``.
TOLERANT_FILES = ("geometry.html", GEOMETRY_FILE)
#: ``math.isclose`` tolerances of those numbers.
GEOMETRY_TOLERANCE = {"rel_tol": 1e-2, "abs_tol": 1e-3}
#: Loss values above this multiple of the panel's median are drawn at the top edge.
LOSS_CLIP_FACTOR = 100.0
#: Similarity heatmaps are drawn up to this many pairings (beyond, the data is in geometry.json).
MAX_SIMILARITY_PAIRINGS = 80
#: Significant digits of the numbers inside figures.
DIGITS = 5
PANEL_COLUMNS = 3
PANEL_HEIGHT = 290
#: Marker symbols of architectures (sorted by name), the same on every map and scatter.
ARCH_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "pentagon", "hexagon", "triangle-down")
#: The matrix's colour scale (Plotly's perceptually uniform Viridis).
COLOUR_SCALE = "Viridis"
STATUS_ORDER = ("ok", "diverged", "failed", "unsupported", "pruned")
#: How the summary entry of a curve metric is named in a figure.
SUMMARY_NAMES = {"hidden": "mean over hidden layers", "mean": "mean over layers", "overall": "all layers together"}
#: Figures appear in the report's section order (learning curves first).
SECTION_ORDER = {section: i for i, (section, _) in enumerate(report_mod.SECTIONS)}
_NUMBER = re.compile(r"^[\[(]?\s*([+-]?(?:\d[\d,]*)?\.?\d+(?:[eE][+-]?\d+)?)")
_FLOAT = re.compile(r"-?\d+\.\d+(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Board:
    """What the site shows, as the leaderboard computes it (the site knows nothing else of it).

    ``frame``: :func:`biobench.results.leaderboard.summarise` (one row per configuration,
    columns ``table_columns()``); ``matrix``: its ``headline`` blocks; ``columns``: the
    display columns (``header``, ``render(row)``, ``help``); ``label(row)``: a row's name;
    ``rank_key``: the column the matrix shows (``<key>_mean``, ``_ci_low``, ``_ci_high``);
    ``results_dir``: the folder of the record files; ``reproductions_dir``: the folder of
    reproduction records, if any.
    """

    records: list[dict[str, Any]]
    frame: pd.DataFrame
    matrix: list[dict[str, Any]]
    columns: tuple[Any, ...]
    label: Callable[[dict[str, Any]], str]
    provenance: str
    track_titles: dict[str, str]
    results_dir: Path
    reproductions_dir: Path | None = None
    rank_key: str = "test_acc"


@dataclass
class Site:
    """A rendered site: text files and byte copies by path relative to the site folder, and notes."""

    texts: dict[str, str] = field(default_factory=dict)
    copies: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Small helpers.
# ---------------------------------------------------------------------------


def slug(*parts: str) -> str:
    """A file-name-safe id of ``parts`` (letters, digits, ``.``, ``-``, ``_``; parts joined by ``__``)."""
    return "__".join(re.sub(r"[^A-Za-z0-9._-]", "-", str(p)) for p in parts)


def row_id(row: dict[str, Any]) -> str:
    """The id of a configuration row: task, architecture, rule, profile, track and configuration hash."""
    return slug(row["task"], row["architecture"], row["rule"], row["profile"], row["track"], row["config_id"])


def pairing_page(row: dict[str, Any]) -> str:
    """The path of a row's page, relative to the site folder."""
    return f"{PAIRINGS_DIR}/{row_id(row)}.html"


def _rounded(value: Any, digits: int = DIGITS) -> Any:
    """Floats to ``digits`` significant digits (recursively); non-finite numbers become None."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float | np.floating):
        value = float(value)
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside ``<script type="application/json">`` (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _esc(text: Any) -> str:
    """A record string as Plotly text: HTML-escaped (Plotly decodes entities, never runs markup)."""
    return html.escape(str(text), quote=False)


def sort_value(text: str) -> tuple[str, str]:
    """How a table cell sorts: ``("num", "0.91")`` for a leading number, ``("text", ...)``, or ``("none", "")``."""
    text = " ".join(str(text).split())
    if text in ("", "—"):
        return "none", ""
    match = _NUMBER.match(text)
    if match:
        return "num", repr(float(match.group(1).replace(",", "")))
    return "text", text.lower()


def _flag_text(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _hex_rgba(colour: str, alpha: float) -> str:
    if colour.startswith("#") and len(colour) == 7:
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", colour)[:3])
    return f"rgba({r},{g},{b},{alpha})"


def arch_symbols(archs: list[str]) -> dict[str, str]:
    """One marker symbol per architecture, by sorted name."""
    return {a: ARCH_SYMBOLS[i % len(ARCH_SYMBOLS)] for i, a in enumerate(sorted(set(archs)))}


def palette(names: list[str]) -> dict[str, tuple[str, str]]:
    """A colour and a dash style per name, stable for a sorted list: Plotly's qualitative palettes."""
    from plotly import colors

    base = colors.qualitative.Plotly if len(names) <= 10 else colors.qualitative.Dark24
    dashes = ("solid", "dash", "dot", "dashdot")
    return {n: (base[i % len(base)], dashes[(i // len(base)) % len(dashes)]) for i, n in enumerate(names)}


def colour_of(value: float, low: float, high: float) -> tuple[str, str]:
    """Background and text colour of an accuracy on the matrix's scale from ``low`` to ``high``."""
    from plotly import colors

    t = 0.5 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    background = colors.sample_colorscale(COLOUR_SCALE, [t])[0]
    r, g, b = (float(v) for v in re.findall(r"[\d.]+", background)[:3])
    luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
    return background, ("#111" if luminance > 0.45 else "#fff")


def colour_stops(count: int = 6) -> str:
    """A CSS linear gradient of the matrix's colour scale."""
    from plotly import colors

    stops = colors.sample_colorscale(COLOUR_SCALE, [i / (count - 1) for i in range(count)])
    return "linear-gradient(to right, " + ", ".join(stops) + ")"


# ---------------------------------------------------------------------------
# Figures: Plotly specifications (plain JSON), laid out in panels.
# ---------------------------------------------------------------------------


@dataclass
class Panel:
    """One subplot: title, axis labels, and how its axes read."""

    title: str
    xlabel: str
    ylabel: str
    integer_x: bool = True
    log_y: bool = False
    log_x: bool = False
    ylim: tuple[float, float] | None = None
    categorical: bool = False
    square: bool = False


@dataclass
class Plot:
    """A figure: panels, Plotly traces (with ``panel``: the index of their panel), caption and notes."""

    title: str
    caption: str
    panels: list[Panel]
    traces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shapes: list[dict[str, Any]] = field(default_factory=list)
    coloraxis: dict[str, Any] | None = None
    legend_title: str = ""
    links: bool = False
    #: What a click on a legend entry hides: ``toggleitem`` (the entry) or ``togglegroup`` (its group).
    group_click: str = "toggleitem"
    panel_height: int = PANEL_HEIGHT
    columns: int = PANEL_COLUMNS

    def axis(self, index: int) -> tuple[str, str]:
        """The x and y axis names of panel ``index`` as traces refer to them (``x``, ``x2``...)."""
        suffix = "" if index == 0 else str(index + 1)
        return f"x{suffix}", f"y{suffix}"


def _integer_ticks(xs: list[float]) -> dict[str, Any]:
    top = max([x for x in xs if x is not None] or [1.0])
    return {"tickmode": "linear", "tick0": 0, "dtick": max(1, math.ceil(top / 10)), "tickformat": "d"}


def log_ticks(values: list[float]) -> dict[str, Any]:
    """Ticks of a log axis: one per decade over two decades or more, else round values written out in full."""
    positive = [v for v in values if isinstance(v, int | float) and v > 0 and math.isfinite(v)]
    if not positive:
        return {}
    low, high = min(positive), max(positive)
    if math.log10(high / low) >= 2:
        return {"dtick": 1}
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = sorted(float(f"{m * 10.0 ** e:.12g}") for e in decades for m in mantissas)
        inside = [t for t in ticks if low / 1.2 <= t <= high * 1.2]
        if len(inside) >= 3:
            break
    if len(inside) < 2:
        return {}  # a range too narrow for round values: Plotly's own ticks
    return {"tickmode": "array", "tickvals": inside, "ticktext": [f"{t:g}" for t in inside]}


def figure_spec(plot: Plot) -> dict[str, Any]:
    """The Plotly figure (``data``, ``layout``) of ``plot``: panels in a grid, legend to the right."""
    n = max(len(plot.panels), 1)
    cols = min(plot.columns, n)
    rows = math.ceil(n / cols)
    gap_x = 0.09 if cols > 1 else 0.0
    gap_y = 0.16 / rows if rows > 1 else 0.0
    width = (1 - gap_x * (cols - 1)) / cols
    height = (1 - gap_y * (rows - 1)) / rows
    layout: dict[str, Any] = {
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
        "height": rows * plot.panel_height + 70,
        "margin": {"l": 64, "r": 16, "t": 36, "b": 56},
        "hovermode": "closest",
        "showlegend": any(t.get("showlegend", True) for t in plot.traces),
        "legend": {
            "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top", "tracegroupgap": 0,
            "groupclick": plot.group_click, "font": {"size": 11},
            **({"title": {"text": _esc(plot.legend_title)}} if plot.legend_title else {}),
        },
        "annotations": [],
        "shapes": list(plot.shapes),
    }
    xs_by_panel: dict[int, list[float]] = {}
    for trace in plot.traces:
        if trace.get("type", "scatter") == "scatter":
            xs_by_panel.setdefault(trace["panel"], []).extend(v for v in trace.get("x", []) if isinstance(v, int | float))
    for i, panel in enumerate(plot.panels):
        r, c = divmod(i, cols)
        x0 = c * (width + gap_x)
        y1 = 1 - r * (height + gap_y)
        xname, yname = plot.axis(i)
        xaxis: dict[str, Any] = {
            "domain": [round(x0, 4), round(x0 + width, 4)], "anchor": yname, "title": {"text": _esc(panel.xlabel)},
            "showline": True, "linecolor": "#999", "ticks": "outside", "zeroline": False, "gridcolor": "#eee",
            "automargin": True,
        }
        yaxis: dict[str, Any] = {
            "domain": [round(y1 - height, 4), round(y1, 4)], "anchor": xname, "title": {"text": _esc(panel.ylabel)},
            "showline": True, "linecolor": "#999", "ticks": "outside", "zeroline": False, "gridcolor": "#eee",
            "automargin": True,
        }
        if panel.log_x:
            xaxis.update(type="log", **log_ticks(xs_by_panel.get(i, [])))
        elif panel.integer_x and not panel.categorical:
            xaxis.update(_integer_ticks(xs_by_panel.get(i, [])))
        if panel.categorical:
            xaxis["type"] = "category"
        if panel.log_y:
            yaxis.update(type="log", **log_ticks([v for t in plot.traces if t["panel"] == i for v in t.get("y", [])]))
        if panel.ylim:
            yaxis["range"] = [math.log10(v) for v in panel.ylim] if panel.log_y else list(panel.ylim)
        if panel.square:
            yaxis.update({"scaleanchor": xname, "constrain": "domain", "autorange": "reversed", "showgrid": False})
            xaxis.update({"constrain": "domain", "showgrid": False, "ticks": "", "showline": False})
            yaxis.update({"ticks": "", "showline": False})
        layout["xaxis" if i == 0 else f"xaxis{i + 1}"] = xaxis
        layout["yaxis" if i == 0 else f"yaxis{i + 1}"] = yaxis
        if panel.title:
            layout["annotations"].append({
                "text": f"<b>{_esc(panel.title)}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
                "x": round(x0 + width / 2, 4), "y": round(y1, 4), "xanchor": "center", "yanchor": "bottom",
                "font": {"size": 12},
            })
    if plot.coloraxis:
        layout["coloraxis"] = plot.coloraxis
    data = []
    for trace in plot.traces:
        t = {k: v for k, v in trace.items() if k != "panel"}
        t["xaxis"], t["yaxis"] = plot.axis(trace["panel"])
        data.append(t)
    return _rounded({"data": data, "layout": layout})


@dataclass
class Series:
    """One line: per-seed (x, y) runs averaged into a mean with a min-max band, or a single run."""

    name: str
    group: str
    colour: str
    dash: str
    runs: list[tuple[list[float], list[float]]]
    #: (label, epoch) of every run of this line that diverged.
    diverged: list[tuple[str, int]] = field(default_factory=list)
    #: (x, y) of the partial curves of diverged runs.
    partial: list[tuple[list[float], list[float]]] = field(default_factory=list)


def _mean_band(runs: list[tuple[list[float], list[float]]]) -> tuple[list[float], list[float], list[float], list[float]] | None:
    band = report_mod.seed_band(runs)
    if band is None:
        return None
    x, mean, lo, hi = band
    return [float(v) for v in x], [float(v) for v in mean], [float(v) for v in lo], [float(v) for v in hi]


def _clip_ceiling(values: list[float]) -> float | None:
    """The top of a log panel: LOSS_CLIP_FACTOR x the median positive value, when some value is above it."""
    positive = sorted(v for v in values if v > 0 and math.isfinite(v))
    if not positive:
        return None
    ceiling = float(np.median(positive)) * LOSS_CLIP_FACTOR
    return ceiling if positive[-1] > ceiling else None


def line_traces(plot: Plot, index: int, series: list[Series], value_label: str, log: bool = False,
                x_label: str = "epoch", mark_all_divergences: bool = False) -> None:
    """Add ``series`` to panel ``index`` of ``plot``: mean lines, min-max bands, diverged markers.

    On a log panel, non-positive values are dropped and values above the clip ceiling are
    drawn at the ceiling (triangle markers; hover shows the value) with a note on ``plot``.
    The first trace of each legend group shows the group in the legend, once per figure.
    A diverged run is marked where its partial curve ends; with ``mark_all_divergences``
    (per-epoch panels) also when it has no point in the panel, at the panel's top.
    """
    drawn: list[tuple[Series, list[float], list[float], list[float] | None, list[float] | None]] = []
    for s in series:
        if len(s.runs) == 1:
            x, y = s.runs[0]
            if x:
                drawn.append((s, list(x), list(y), None, None))
        elif s.runs:
            band = _mean_band(s.runs)
            if band is not None:
                x, mean, lo, hi = band
                drawn.append((s, x, mean, lo, hi))
    everything = [v for _, _, y, _, hi in drawn for v in (hi or y)] + [v for s in series for _, y in s.partial for v in y]
    ceiling = _clip_ceiling(everything) if log else None
    clipped = 0

    def shown(ys: list[float]) -> list[float | None]:
        nonlocal clipped
        out: list[float | None] = []
        for v in ys:
            if log and v <= 0:
                out.append(None)
            elif ceiling is not None and v > ceiling:
                clipped += 1
                out.append(ceiling)
            else:
                out.append(v)
        return out

    legend_seen = {t.get("legendgroup") for t in plot.traces if t.get("showlegend")}

    def legend(group: str) -> bool:
        if group in legend_seen:
            return False
        legend_seen.add(group)
        return True

    hover = f"%{{fullData.name}}<br>{_esc(x_label)} %{{x}}<br>{_esc(value_label)} %{{customdata:.4g}}<extra></extra>"
    for s, x, y, lo, hi in drawn:
        if lo is not None and hi is not None:
            plot.traces.append({
                "type": "scatter", "panel": index, "x": x, "y": shown(hi), "mode": "lines", "line": {"width": 0},
                "hoverinfo": "skip", "showlegend": False, "legendgroup": s.group,
            })
            plot.traces.append({
                "type": "scatter", "panel": index, "x": x, "y": shown(lo), "mode": "lines", "line": {"width": 0},
                "fill": "tonexty", "fillcolor": _hex_rgba(s.colour, 0.15), "hoverinfo": "skip",
                "showlegend": False, "legendgroup": s.group,
            })
        ys = shown(y)
        symbols = ["triangle-up" if ceiling is not None and v > ceiling else "circle" for v in y]
        plot.traces.append({
            "type": "scatter", "panel": index, "x": x, "y": ys, "customdata": y, "name": _esc(s.name),
            "legendgroup": s.group, "showlegend": legend(s.group), "mode": "lines+markers" if len(x) <= 30 else "lines",
            "line": {"color": s.colour, "dash": s.dash, "width": 2},
            "marker": {"size": 5, "symbol": symbols, "color": s.colour}, "hovertemplate": hover,
        })
    for s in series:
        for x, y in s.partial:
            if x:
                plot.traces.append({
                    "type": "scatter", "panel": index, "x": list(x), "y": shown(list(y)), "customdata": list(y),
                    "name": _esc(s.name), "legendgroup": s.group, "showlegend": legend(s.group),
                    "mode": "lines+markers", "line": {"color": s.colour, "dash": "dot", "width": 1.5},
                    "marker": {"size": 5, "color": s.colour}, "hovertemplate": hover,
                })
    tops = [v for v in everything if not log or v > 0]
    top = ceiling if ceiling is not None else (max(tops) if tops else 1.0)
    for s in series:
        for (label, epoch), (_, py) in zip(s.diverged, s.partial, strict=True):
            if not py and not mark_all_divergences:
                continue
            y_at = shown([py[-1]])[0] if py else top
            plot.traces.append({
                "type": "scatter", "panel": index, "x": [epoch], "y": [y_at], "mode": "markers",
                "name": _esc(label), "legendgroup": s.group, "showlegend": legend(s.group),
                "marker": {"symbol": "x", "size": 11, "color": s.colour, "line": {"width": 1, "color": "#000"}},
                "hovertemplate": f"{_esc(label)}<extra></extra>",
            })
    if clipped:
        plot.notes.append(
            f"{clipped} value(s) of panel '{plot.panels[index].title}' above {ceiling:.3g} ({LOSS_CLIP_FACTOR:g}× the "
            "panel's median) are drawn at that ceiling (triangles); hover shows the value."
        )


# ---------------------------------------------------------------------------
# Reading records for figures.
# ---------------------------------------------------------------------------


def _diverged_epoch(record: dict[str, Any]) -> int:
    epoch = record["metrics"].get("diverged_epoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        return epoch
    found = re.search(r"at epoch (\d+)", record.get("reason") or "")
    return int(found.group(1)) + 1 if found else 1


def _series_of_seeds(recs: list[dict[str, Any]], read: Callable[[dict[str, Any]], tuple[list[float], list[float]]],
                     colours: dict[str, tuple[str, str]]) -> list[Series]:
    """One series per seed (ok or diverged) of one configuration."""
    out = []
    for r in recs:
        if r["status"] not in ("ok", "diverged"):
            continue
        name = f"seed {r['seed']}"
        colour, dash = colours[name]
        x, y = read(r)
        if r["status"] == "ok":
            out.append(Series(name, name, colour, dash, [(x, y)]))
        else:
            label = f"seed {r['seed']} diverged at epoch {_diverged_epoch(r)}"
            out.append(Series(label, name, colour, dash, [], [(label, _diverged_epoch(r))], [(x, y)]))
    return out


def _series_of_rules(rows: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                     read: Callable[[dict[str, Any]], tuple[list[float], list[float]]],
                     colours: dict[str, tuple[str, str]], label: Callable[[dict[str, Any]], str]) -> list[Series]:
    """One series per configuration row (mean over its ok seeds), diverged seeds marked."""
    out = []
    for row, recs in rows:
        ok = [read(r) for r in recs if r["status"] == "ok"]
        bad = [r for r in recs if r["status"] == "diverged"]
        name = label(row)
        if bad:
            name += f" ({len(bad)}/{len(recs)} seeds diverged)"
        colour, dash = colours[row["rule"]]
        out.append(Series(
            name, row_id(row), colour, dash, [run for run in ok if run[0]],
            [(f"{label(row)}: seed {r['seed']} diverged at epoch {_diverged_epoch(r)}", _diverged_epoch(r)) for r in bad],
            [read(r) for r in bad],
        ))
    return out


def _history_reader(entry: str) -> Callable[[dict[str, Any]], tuple[list[float], list[float]]]:
    return lambda r: report_mod.history_series(r, entry)


def _curve_reader(spec: CurveFigure, layer: str | None) -> Callable[[dict[str, Any]], tuple[list[float], list[float]]]:
    return lambda r: report_mod.curve(r["metrics"].get(spec.key), spec.field, layer)


def _sweep_reader(spec: SweepFigure) -> Callable[[dict[str, Any]], tuple[list[float], list[float]]]:
    def read(r: dict[str, Any]) -> tuple[list[float], list[float]]:
        pairs = spec.points(r["metrics"]) if r["metrics"] else []
        return [float(x) for x, _ in pairs], [float(y) for _, y in pairs]
    return read


def _has_points(series: list[Series]) -> bool:
    return any(x for s in series for x, _ in s.runs + s.partial)


def _history_plot(spec: HistoryFigure, make: Callable[[Callable], list[Series]]) -> Plot | None:
    panels = [Panel(title, "epoch", ylabel + (" (log)" if entry.endswith("loss") else ""), log_y=entry.endswith("loss"))
              for entry, ylabel, title in spec.panels]
    plot = Plot(spec.title, spec.caption, panels)
    for i, (entry, ylabel, _) in enumerate(spec.panels):
        series = make(_history_reader(entry))
        if _has_points(series) or any(s.diverged for s in series):
            line_traces(plot, i, series, ylabel, log=entry.endswith("loss"), mark_all_divergences=True)
    return plot if plot.traces else None


def _curve_layers(spec: CurveFigure, recs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(layer for r in recs for layer in report_mod.curve_layers(r["metrics"].get(spec.key))))


def _summary_name(field_name: str) -> str:
    return SUMMARY_NAMES.get(field_name, field_name)


def _curve_plot_of_rules(spec: CurveFigure, make: Callable[[Callable], list[Series]], recs: list[dict[str, Any]]) -> Plot | None:
    layers = _curve_layers(spec, recs)
    panels = [Panel(f"layer {layer}" if layer else _summary_name(spec.field), "epoch", spec.ylabel, ylim=spec.ylim)
              for layer in [None, *layers]]
    plot = Plot(spec.title, spec.caption, panels)
    for i, layer in enumerate([None, *layers]):
        series = make(_curve_reader(spec, layer))
        if _has_points(series):
            line_traces(plot, i, series, spec.ylabel)
    return plot if plot.traces else None


def seed_caption(caption: str, addition: str) -> str:
    """A figure caption written for one line per rule, rewritten for one configuration's page.

    Clauses about averaging over seeds, shading and panels are dropped; ``addition`` says what the lines are.
    """
    clauses = [c.strip().rstrip(".;") for c in re.split(r"(?<=[.;])\s+", caption) if c.strip()]
    kept = [c for c in clauses if not c.startswith(("Mean over ok seeds", "shaded")) and "panel" not in c]
    text = "; ".join(kept)
    return (f"{text[:1].upper()}{text[1:]}. " if text else "") + addition


def _curve_plot_of_layers(spec: CurveFigure, recs: list[dict[str, Any]]) -> Plot | None:
    """One configuration: one line per layer (mean over ok seeds) and the summary field, in one panel."""
    ok = [r for r in recs if r["status"] == "ok"]
    layers = _curve_layers(spec, ok)
    colours = palette(layers)
    series = [Series(_summary_name(spec.field), "summary", "#222222", "dash",
                     [_curve_reader(spec, None)(r) for r in ok])]
    series += [Series(f"layer {layer}", f"layer {layer}", *colours[layer], [_curve_reader(spec, layer)(r) for r in ok])
               for layer in layers]
    series = [Series(s.name, s.group, s.colour, s.dash, [run for run in s.runs if run[0]]) for s in series]
    series = [s for s in series if s.runs]
    if not series:
        return None
    caption = seed_caption(spec.caption, f"One line per layer and, dashed, the {_summary_name(spec.field)}; "
                                         "mean over ok seeds, shaded: min-max over seeds.")
    plot = Plot(spec.title, caption, [Panel("", "epoch", spec.ylabel, ylim=spec.ylim)], legend_title="layer")
    line_traces(plot, 0, series, spec.ylabel)
    return plot


def _bars_plot(spec: LayerBarsFigure, groups: list[tuple[str, str, list[dict[str, Any]]]]) -> Plot | None:
    """Per-layer bars (mean over ok seeds, min-max as error bars); ``groups``: (name, colour, records)."""
    values = {
        name: [report_mod.per_layer(r["metrics"].get(spec.key), spec.path) for r in recs if r["status"] == "ok"]
        for name, _, recs in groups
    }
    layers = list(dict.fromkeys(layer for runs in values.values() for run in runs for layer in run))
    if not layers:
        return None
    positive = all(v > 0 for runs in values.values() for run in runs for v in run.values())
    log = spec.log_scale and positive
    plot = Plot(spec.title, spec.caption, [Panel("", "layer", spec.ylabel, categorical=True, log_y=log,
                                                 ylim=None if log else spec.ylim)])
    for name, colour, _ in groups:
        runs = values[name]
        xs, means, plus, minus = [], [], [], []
        for layer in layers:
            present = [run[layer] for run in runs if layer in run]
            if present:
                mean = float(np.mean(present))
                xs.append(layer)
                means.append(mean)
                plus.append(max(present) - mean)
                minus.append(mean - min(present))
        if xs:
            plot.traces.append({
                "type": "bar", "panel": 0, "x": xs, "y": means, "name": _esc(name), "marker": {"color": colour},
                "error_y": {"type": "data", "array": plus, "arrayminus": minus, "visible": len(runs) > 1,
                            "color": "#444", "thickness": 1},
                "hovertemplate": f"{_esc(name)}<br>layer %{{x}}<br>%{{y:.4g}}<extra></extra>",
            })
    if spec.reference_line is not None:
        plot.shapes.append({"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y",
                            "y0": spec.reference_line, "y1": spec.reference_line,
                            "line": {"color": "#666", "dash": "dot", "width": 1}})
    return plot if plot.traces else None


def _sweep_plot(spec: SweepFigure, series: list[Series]) -> Plot | None:
    if not _has_points(series):
        return None
    plot = Plot(spec.title, spec.caption, [Panel("", spec.xlabel, spec.ylabel, integer_x=False, ylim=spec.ylim)])
    line_traces(plot, 0, series, spec.ylabel, x_label=spec.xlabel)
    return plot


def _seed_mean(recs: list[dict[str, Any]], read: Callable[[dict[str, Any]], float | None]) -> float | None:
    values = [v for v in (read(r["metrics"]) for r in recs if r["status"] == "ok") if v is not None]
    values = [float(v) for v in values if math.isfinite(float(v))]
    return sum(values) / len(values) if values else None


def _rule_legend(plot: Plot, rules: list[str], colours: dict[str, tuple[str, str]]) -> None:
    """Legend entries of rules (a circle of the rule's colour; its points share its legend group)."""
    plot.group_click = "togglegroup"
    plot.legend_title = "rule"
    for rule in sorted(rules):
        plot.traces.append({
            "type": "scatter", "panel": 0, "mode": "markers", "x": [None], "y": [None], "name": _esc(rule),
            "legendgroup": rule, "marker": {"size": 10, "color": colours.get(rule, ("#444", ""))[0], "symbol": "circle",
                                            "line": {"width": 1, "color": "#222"}},
            "hoverinfo": "skip",
        })


def _architecture_legend(plot: Plot, archs: list[str], symbols: dict[str, str]) -> None:
    for n, a in enumerate(sorted(archs)):
        plot.traces.append({
            "type": "scatter", "panel": 0, "mode": "markers", "x": [None], "y": [None], "name": _esc(a),
            "legendgroup": "architectures", **({"legendgrouptitle": {"text": "architecture"}} if n == 0 else {}),
            "marker": {"size": 11, "color": "#bbb", "symbol": symbols[a], "line": {"width": 1, "color": "#222"}},
            "hoverinfo": "skip",
        })


def scatter_plot(spec: ScatterFigure, members: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                 colours: dict[str, tuple[str, str]], label: Callable[[dict[str, Any]], str], root: str = "") -> Plot | None:
    """One point per configuration row (mean over its ok seeds) of ``spec.y`` against each panel's x.

    Colour: rule; marker: architecture; hover names the pairing, a click opens its page
    (``root``: the path from the page to the site folder).
    """
    symbols = arch_symbols([row["architecture"] for row, _ in members])
    drawn = []
    for read_x, xlabel, log in spec.panels:
        by_rule: dict[str, list[tuple[dict[str, Any], float, float]]] = {}
        for row, recs in members:
            x, y = _seed_mean(recs, read_x), _seed_mean(recs, spec.y)
            if x is not None and y is not None and (x > 0 or not log):
                by_rule.setdefault(row["rule"], []).append((row, x, y))
        if by_rule:
            drawn.append((Panel("", xlabel, spec.ylabel, integer_x=False, log_x=log), by_rule))
    missing = [xlabel for _, xlabel, _ in spec.panels if xlabel not in {panel.xlabel for panel, _ in drawn}]
    plot = Plot(spec.title, spec.caption + " Hover over a point for its pairing; click it to open the pairing's page.",
                [panel for panel, _ in drawn], links=True, columns=2, panel_height=420)
    if missing:
        plot.notes.append(f"Not drawn, no ok record has the values: {'; '.join(missing)}.")
    shown: set[str] = set()
    for i, (panel, by_rule) in enumerate(drawn):
        for rule in sorted(by_rule):
            points = by_rule[rule]
            plot.traces.append({
                "type": "scatter", "panel": i, "mode": "markers", "name": _esc(rule), "legendgroup": rule,
                "showlegend": False, "x": [x for _, x, _ in points], "y": [y for _, _, y in points],
                "marker": {"size": 10, "color": colours.get(rule, ("#444", ""))[0],
                           "symbol": [symbols[row["architecture"]] for row, _, _ in points],
                           "line": {"width": 1, "color": "#222"}},
                "text": [_esc(f"{label(row)} on {row['architecture']}") for row, _, _ in points],
                "customdata": [root + pairing_page(row) for row, _, _ in points],
                "hovertemplate": (f"%{{text}}<br>{_esc(panel.xlabel)}: %{{x:.4g}}<br>{_esc(spec.ylabel)}: "
                                  "%{y:.4g}<extra></extra>"),
            })
            shown.add(rule)
    if not shown:
        return None
    _rule_legend(plot, sorted(shown), colours)
    archs = sorted({row["architecture"] for row, _ in members})
    if len(archs) > 1:
        _architecture_legend(plot, archs, symbols)
    return plot


def figure_specs() -> list[Any]:
    """The metric classes' figure specifications, in the report's section order."""
    return sorted(catalog.figures(), key=lambda spec: SECTION_ORDER.get(spec.section, len(SECTION_ORDER)))


def pairing_plots(recs: list[dict[str, Any]]) -> tuple[list[Plot], list[str]]:
    """The figures of one configuration over its seeds, from the metric classes' figure specifications."""
    seeds = sorted({f"seed {r['seed']}" for r in recs})
    colours = palette(seeds)
    plots, notes = [], []
    for spec in figure_specs():
        if isinstance(spec, HistoryFigure):
            plot = _history_plot(spec, lambda read: _series_of_seeds(recs, read, colours))
            if plot:
                plot.legend_title = "seed"
                plot.caption = seed_caption(spec.caption, "One line per seed.")
        elif isinstance(spec, CurveFigure):
            plot = _curve_plot_of_layers(spec, recs)
        elif isinstance(spec, LayerBarsFigure):
            groups = [("mean over ok seeds", palette(["a"])["a"][0], recs)]
            plot = _bars_plot(spec, groups)
            if plot:
                plot.traces[0]["showlegend"] = False
                plot.caption += " Bars: mean over ok seeds; whiskers: min-max over seeds."
        elif isinstance(spec, SweepFigure):
            plot = _sweep_plot(spec, _series_of_seeds(recs, _sweep_reader(spec), colours))
            if plot:
                plot.legend_title = "seed"
                plot.caption = seed_caption(spec.caption, "One line per seed.")
        elif isinstance(spec, ScatterFigure):
            continue  # one point per pairing: drawn on the matrix page and the comparison pages
        else:
            notes.append(f"{spec.title}: a figure of kind {type(spec).__name__}, which the site does not draw")
            continue
        if plot is None:
            notes.append(f"{spec.title}: no record of this configuration holds `{getattr(spec, 'key', 'history')}`")
        else:
            plots.append(plot)
    return plots, notes


def compare_plots(rows: list[tuple[dict[str, Any], list[dict[str, Any]]]], colours: dict[str, tuple[str, str]],
                  label: Callable[[dict[str, Any]], str]) -> tuple[list[Plot], list[str]]:
    """The figures of one architecture with one line (or bar) per configuration row."""
    plots, notes = [], []
    everything = [r for _, recs in rows for r in recs]

    def make(read: Callable) -> list[Series]:
        return _series_of_rules(rows, read, colours, label)

    for spec in figure_specs():
        if isinstance(spec, HistoryFigure):
            plot = _history_plot(spec, make)
        elif isinstance(spec, CurveFigure):
            plot = _curve_plot_of_rules(spec, make, everything)
        elif isinstance(spec, LayerBarsFigure):
            plot = _bars_plot(spec, [(label(row), colours[row["rule"]][0], recs) for row, recs in rows])
        elif isinstance(spec, SweepFigure):
            plot = _sweep_plot(spec, make(_sweep_reader(spec)))
        elif isinstance(spec, ScatterFigure):
            plot = scatter_plot(spec, rows, colours, label, root="../")
        else:
            notes.append(f"{spec.title}: a figure of kind {type(spec).__name__}, which the site does not draw")
            continue
        if plot is None:
            notes.append(f"{spec.title}: no record holds `{getattr(spec, 'key', 'the values')}`")
        else:
            plot.legend_title = "rule"
            plots.append(plot)
    return plots, notes


def rdm_plot(recs: list[dict[str, Any]]) -> tuple[Plot, dict[str, Any]] | str:
    """Seed-averaged RDMs of one configuration, one heatmap per layer, and its figure; a note without RDMs."""
    pairings, probe, notes = rsa.collect(recs)
    if not pairings or not pairings[0].layers or probe is None:
        return notes[0] if notes else "no ok record holds representations"
    p = pairings[0]
    labels = list(probe["labels"])
    indices = list(probe["indices"])
    names = [f"{c}·{i}" for c, i in zip(labels, indices, strict=True)]
    middles, ticktext = [], []
    for c in dict.fromkeys(labels):
        members = [n for n, lab in zip(names, labels, strict=True) if lab == c]
        middles.append(members[len(members) // 2])
        ticktext.append(str(c))
    layers = [name for name in p.layer_order if name in p.layers]
    panels = [Panel(f"layer {layer}", "", "", categorical=True, square=True) for layer in layers]
    plot = Plot("Representational dissimilarity matrices",
                f"Correlation-distance RDMs (1 − Pearson r) of the probe set (the first {probe['per_class']} test "
                f"images of each class, grouped by class; hover: class·test index), averaged over seeds "
                f"{', '.join(map(str, p.seeds))}. Spiking layers: spike counts.",
                panels, coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": 2,
                                   "colorbar": {"title": {"text": "1 − r"}, "len": 0.8}},
                panel_height=340)
    for i, layer in enumerate(layers):
        z = rsa.rdm_matrix(p.layers[layer])
        plot.traces.append({
            "type": "heatmap", "panel": i, "x": names, "y": names, "z": np.round(z, 3).tolist(),
            "coloraxis": "coloraxis", "hovertemplate": "%{y} vs %{x}<br>1 − r = %{z:.3f}<extra></extra>",
        })
    spec = figure_spec(plot)
    for i in range(len(layers)):
        for axis in ("xaxis", "yaxis"):
            key = axis if i == 0 else f"{axis}{i + 1}"
            spec["layout"][key].update({"tickmode": "array", "tickvals": middles, "ticktext": ticktext, "title": {"text": "class"}})
    return plot, spec


# ---------------------------------------------------------------------------
# The pages.
# ---------------------------------------------------------------------------


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict(orient="records") if not frame.empty else []


def records_by_row(records: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Records grouped as the leaderboard's rows group them (see :func:`row_key`), seeds in order."""
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in records:
        key = (r["task"], r["architecture"], r["rule"], r["profile"], r.get("track", "default"),
               records_mod.configuration_hash(r["config"]))
        out.setdefault(key, []).append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    """A row's group: task, architecture, rule, profile, track and configuration hash."""
    return (row["task"], row["architecture"], row["rule"], row["profile"], row["track"], row["config_id"])


def record_files(folder: Path | None, recs: list[dict[str, Any]]) -> dict[str, Path]:
    """The file of every record in ``folder`` by run id (``<run_id>.json``, else found by reading the files)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    wanted = {r["run_id"] for r in recs}
    files = {p.stem: p for p in sorted(Path(folder).glob("*.json")) if p.stem in wanted}
    missing = wanted - set(files)
    if missing:
        for path in sorted(Path(folder).glob("*.json")):
            if path.stem in files:
                continue
            try:
                run = json.loads(path.read_text(encoding="utf-8")).get("run_id")
            except (OSError, ValueError, AttributeError):
                continue
            if run in missing:
                files[run] = path
    return files


class _Figures:
    """Sequential figure ids and their JSON, for one page."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, plot: Plot, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        from markupsafe import Markup

        spec = spec if spec is not None else figure_spec(plot)
        item = {
            "id": f"figure-{len(self.items) + 1}", "title": plot.title, "caption": plot.caption, "notes": plot.notes,
            "wide": len(plot.panels) > 1,
            "json": Markup(script_json({"data": spec["data"], "layout": spec["layout"], "links": plot.links})),
        }
        self.items.append(item)
        return item


def _table_cells(board: Board, row: dict[str, Any]) -> list[dict[str, str]]:
    cells = []
    for column in board.columns:
        text = column.render(row)
        kind, key = sort_value(text)
        cells.append({"text": text, "sort": key, "kind": kind})
    return cells


def _column_kinds(rows_cells: list[list[dict[str, str]]], count: int) -> list[str]:
    kinds = []
    for i in range(count):
        seen = {cells[i]["kind"] for cells in rows_cells}
        kinds.append("num" if "num" in seen and "text" not in seen else "text")
    return kinds


def _tooltip(board: Board, row: dict[str, Any] | None, rule: str, arch: str) -> dict[str, Any]:
    if row is None:
        return {"title": f"{rule} on {arch}", "entries": [], "status": "not run",
                "reason": "no record of this pairing in the leaderboard's records"}
    items = [(c.header, c.render(row)) for c in board.columns[1:]]
    return {"title": f"{board.label(row)} on {arch}", "entries": items, "status": row["status"], "reason": row["reason"]}


def _matrix_blocks(board: Board) -> list[dict[str, Any]]:
    key = board.rank_key
    blocks = []
    for block in board.matrix:
        values = [c[f"{key}_mean"] for r in block["rows"] for c in r["cells"].values()
                  if c is not None and c["status"] == "ok" and c[f"{key}_mean"] is not None]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        rows = []
        for r in block["rows"]:
            cells = []
            for arch in block["architectures"]:
                row = r["cells"][arch]
                cell: dict[str, Any] = {"tip": _tooltip(board, row, r["rule"], arch), "page": None, "text": "",
                                        "interval": "", "style": "", "status": row["status"] if row else "not run"}
                if row is not None:
                    cell["page"] = pairing_page(row)
                mean = None if row is None else row[f"{key}_mean"]
                if row is not None and row["status"] == "ok" and mean is not None:
                    background, text_colour = colour_of(mean, low, high)
                    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
                    cell.update(
                        text=f"{100 * mean:.2f}",
                        interval="" if lo is None or hi is None else f"[{100 * lo:.2f}, {100 * hi:.2f}]",
                        style=f"background:{background};color:{text_colour}",
                    )
                cells.append(cell)
            rows.append({"rule": r["rule"], "family": r["family"] or "", "cells": cells})
        blocks.append({
            "task": block["task"], "profile": block["profile"], "track": board.track_titles.get(block["track"], block["track"]),
            "architectures": block["architectures"], "rows": rows,
            "low": f"{100 * low:.2f}" if values else "—", "high": f"{100 * high:.2f}" if values else "—",
        })
    return blocks


def _groups(rows: list[dict[str, Any]]) -> list[tuple[tuple[str, str, str, str], list[dict[str, Any]]]]:
    out: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["task"], row["profile"], row["architecture"], row["track"]), []).append(row)
    return list(out.items())


def compare_page(task: str, profile: str, arch: str, track: str) -> str:
    """The path of an architecture's comparison page, relative to the site folder."""
    return f"{COMPARE_DIR}/{slug(task, profile, arch, track)}.html"


def _table_groups(board: Board, rows: list[dict[str, Any]], compare_pages: set[str]) -> list[dict[str, Any]]:
    groups = []
    for (task, profile, arch, track), members in _groups(rows):
        cells = [_table_cells(board, r) for r in members]
        compare = compare_page(task, profile, arch, track)
        groups.append({
            "id": slug(task, profile, arch, track), "task": task, "profile": profile, "architecture": arch,
            "track": board.track_titles.get(track, track),
            "compare": compare if compare in compare_pages else None,
            "kinds": _column_kinds(cells, len(board.columns)),
            "rows": [
                {
                    "id": row_id(r), "page": pairing_page(r), "cells": c, "reference": bool(r["reference"]),
                    "label": board.label(r), "reason": r["reason"] or "",
                    "family": r["family"] or "none", "status": r["status"], "track": r["track"],
                    "weight_transport": _flag_text(r["weight_transport"]), "global_error": _flag_text(r["global_error"]),
                }
                for r, c in zip(members, cells, strict=True)
            ],
        })
    return groups


def _filters(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    def present(key: str, order: tuple[str, ...] = ()) -> list[str]:
        values = {str(r[key]) if r[key] is not None else "none" for r in rows}
        return sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v))

    return {
        "family": present("family"),
        "status": present("status", STATUS_ORDER),
        "track": present("track", ("default", "tuned")),
    }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _pairing_context(board: Board, row: dict[str, Any], recs: list[dict[str, Any]]) -> dict[str, Any]:
    figures = _Figures()
    notes: list[str] = []
    rdm_figure = None
    if any(r["status"] in ("ok", "diverged") for r in recs):
        plots, notes = pairing_plots(recs)
        for plot in plots:
            figures.add(plot)
        rdm = rdm_plot(recs)
        if isinstance(rdm, str):
            notes.append(f"RDMs: {rdm}")
        else:
            rdm_figure = figures.add(*rdm)
    first = recs[0] if recs else {}
    config = json.loads(json.dumps(first.get("config", {})))
    config.get("run", {}).pop("seed", None)
    seeds = [
        {
            "seed": r["seed"], "status": r["status"], "reason": (r.get("reason") or "").strip().splitlines()[0] if r.get("reason") else "",
            "record": f"../{RECORDS_DIR}/{r['run_id']}.json", "run_id": r["run_id"],
            "started": r.get("started_at") or "—", "finished": r.get("finished_at") or "—",
            "git": str((r.get("environment") or {}).get("git_revision", "—")),
            "threads": (r.get("environment") or {}).get("torch_threads", "—"),
            "migrated": r.get("migrated_from"),
        }
        for r in recs
    ]
    provenance = {
        "environment": {r["run_id"]: r.get("environment") for r in recs},
        "data": first.get("data"),
        "provenance": {r["run_id"]: r["provenance"] for r in recs if r.get("provenance")},
    }
    summary = [(c.header, c.render(row), c.help) for c in board.columns]
    return {
        "row": row, "label": board.label(row), "track": board.track_titles.get(row["track"], row["track"]),
        "summary": summary, "figures": [f for f in figures.items if f is not rdm_figure],
        "rdm": rdm_figure, "notes": notes, "seeds": seeds,
        "config": _pretty(config), "overrides": _pretty(first.get("overrides") or {}),
        "flags": _pretty(first.get("rule_flags") or {}), "record_provenance": _pretty(provenance),
        "compare": compare_page(row["task"], row["profile"], row["architecture"], row["track"]),
    }


def _geometry(analysis: dict[str, Any], page_of: dict[tuple[str, str, str], str],
              colours: dict[str, tuple[str, str]]) -> tuple[list[dict[str, Any]], _Figures]:
    """The MDS map and the similarity heatmap of every depth slot."""
    figures = _Figures()
    slots = []
    archs = sorted({p["architecture"] for p in analysis.get("pairings", [])})
    marker = arch_symbols(archs)
    for slot, block in (analysis.get("slots") or {}).items():
        entry: dict[str, Any] = {"slot": slot, "map": None, "similarity": None, "stress": None, "count": len(block["rules"])}
        names = [f"{a}/{r}" for a, r in zip(block["architectures"], block["rules"], strict=True)]
        mds = block.get("mds")
        if mds:
            entry["stress"] = f"{mds['stress']:.4g}"
            plot = Plot(f"Pairings by representational geometry, {slot} layer",
                        f"Metric MDS of 1 − Spearman ρ between seed-averaged RDMs ({slot} layer: "
                        f"{'penultimate' if slot == 'hidden' else 'last'} plastic layer); colour: rule, marker: "
                        f"architecture; stress {mds['stress']:.4g} (scikit-learn's raw stress: the sum of squared "
                        "differences between the map's distances and the dissimilarities). Click a point to open "
                        "its pairing.",
                        [Panel("", "MDS 1", "MDS 2", integer_x=False, square=False)], links=True,
                        panel_height=520)
            coords = mds["coordinates"]
            by_rule: dict[str, list[int]] = {}
            for i, rule in enumerate(block["rules"]):
                by_rule.setdefault(rule, []).append(i)
            for rule in sorted(by_rule):
                idx = by_rule[rule]
                plot.traces.append({
                    "type": "scatter", "panel": 0, "mode": "markers", "name": _esc(rule), "legendgroup": rule,
                    "showlegend": False, "x": [coords[i][0] for i in idx], "y": [coords[i][1] for i in idx],
                    "marker": {"size": 12, "color": colours.get(rule, ("#444", "solid"))[0],
                               "symbol": [marker[block["architectures"][i]] for i in idx],
                               "line": {"width": 1, "color": "#222"}},
                    "text": [_esc(f"{rule} on {block['architectures'][i]} (layer {block['layers'][i]})") for i in idx],
                    "customdata": [page_of.get((block["pairings"][i].split("/")[0], block["architectures"][i], rule), "")
                                   for i in idx],
                    "hovertemplate": "%{text}<br>MDS (%{x:.3f}, %{y:.3f})<extra></extra>",
                })
            _rule_legend(plot, list(by_rule), colours)
            _architecture_legend(plot, [a for a in archs if a in block["architectures"]], marker)
            spec = figure_spec(plot)
            spec["layout"]["yaxis"].update({"scaleanchor": "x", "scaleratio": 1})
            entry["map"] = figures.add(plot, spec)
        if len(names) <= MAX_SIMILARITY_PAIRINGS:
            sim = Plot(f"RDM similarity between pairings, {slot} layer",
                       "Spearman rank correlation of seed-averaged RDM upper triangles (rsatoolbox); hover for the pair.",
                       [Panel("", "", "", categorical=True, square=True)],
                       coloraxis={"colorscale": "RdBu", "cmin": -1, "cmax": 1,
                                  "colorbar": {"title": {"text": "ρ"}}},
                       panel_height=max(360, 14 * len(names) + 120))
            sim.traces.append({
                "type": "heatmap", "panel": 0, "x": [_esc(n) for n in names], "y": [_esc(n) for n in names],
                "z": block["similarity"], "coloraxis": "coloraxis",
                "hovertemplate": "%{y} vs %{x}<br>ρ = %{z:.3f}<extra></extra>",
            })
            spec = figure_spec(sim)
            for axis in ("xaxis", "yaxis"):
                spec["layout"][axis].update({"tickfont": {"size": 9}})
            entry["similarity"] = figures.add(sim, spec)
        else:
            entry["similarity_note"] = (f"{len(names)} pairings: the similarity matrix is in {GEOMETRY_FILE}, "
                                        f"not drawn (more than {MAX_SIMILARITY_PAIRINGS}).")
        slots.append(entry)
    return slots, figures


def _reproduction_context(recs: list[dict[str, Any]]) -> dict[str, Any]:
    comparisons = repro_mod.compare(recs)
    setups: dict[str, dict[str, Any]] = {}
    files: dict[str, list[str]] = {}
    for r in recs:
        setup = repro_mod.reproduction_of(r)
        if setup is not None:
            setups.setdefault(setup["setup"], setup)
            files.setdefault(setup["setup"], []).append(r["run_id"])
    rows = []
    for c in comparisons:
        percent = c.metric.endswith("acc")

        def fmt(v: float | None, p: bool = percent) -> str:
            return "—" if v is None else (f"{100 * v:.2f}" if p else f"{v:.4f}")

        measured = fmt(c.mean)
        if c.mean is not None:
            measured += ("" if c.std is None else f" ± {fmt(c.std)}") + f" ({len(c.measured)}/{c.seeds})"
        diff = "—" if c.mean is None else (f"{100 * (c.mean - c.published):+.2f}" if percent else f"{c.mean - c.published:+.4f}")
        rows.append({
            "setup": c.setup, "budget": c.budget, "value": c.metric + (f", epoch {c.epoch}" if c.epoch else ""),
            "published": fmt(c.published), "measured": measured, "difference": diff, "tolerance": fmt(c.tolerance),
            "verdict": c.verdict, "what": c.what, "anchor": f"setup-{slug(c.setup)}",
        })
    counts = {v: sum(c.verdict == v for c in comparisons) for v in repro_mod.VERDICTS}
    notes = [
        {"name": name, "anchor": f"setup-{slug(name)}", "citation": s.get("citation", ""), "source": s.get("source", ""),
         "declared_by": s.get("declared_by", ""), "notes": s.get("notes", ""),
         "published": [(v["metric"], v["what"]) for v in s.get("published", [])],
         "records": [f"{REPRODUCTION_RECORDS_DIR}/{run}.json" for run in sorted(files.get(name, []))]}
        for name, s in sorted(setups.items())
    ]
    data = [
        {"setup": c.setup, "budget": c.budget, "metric": c.metric, "epoch": c.epoch, "published": c.published,
         "tolerance": c.tolerance, "measured": list(c.measured), "seeds": c.seeds, "mean": c.mean, "std": c.std,
         "verdict": c.verdict, "what": c.what}
        for c in comparisons
    ]
    return {"rows": rows, "counts": counts, "setups": notes, "data": data}


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value


def _dump(value: Any) -> str:
    return json.dumps(_json_ready(value), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def render_site(board: Board) -> Site:
    """Every file of the site (nothing is written): page texts, data files, assets and record copies."""
    site = Site()
    rows = _rows(board.frame)
    by_row = records_by_row(board.records)
    files = record_files(board.results_dir, board.records)
    for run_id, path in sorted(files.items()):
        site.copies[f"{RECORDS_DIR}/{run_id}.json"] = path
    missing = sorted({r["run_id"] for r in board.records} - set(files))
    if missing:
        site.notes.append(f"{len(missing)} record(s) without a file in {board.results_dir} (no link): {', '.join(missing[:3])}")
    repro_recs: list[dict[str, Any]] = []
    if board.reproductions_dir is not None and Path(board.reproductions_dir).is_dir():
        repro_recs = records_mod.read_records(Path(board.reproductions_dir), warn=site.notes.append)
        for run_id, path in sorted(record_files(board.reproductions_dir, repro_recs).items()):
            site.copies[f"{REPRODUCTION_RECORDS_DIR}/{run_id}.json"] = path
    nav = [("index.html", "Matrix"), ("tables.html", "Tables"), ("geometry.html", "Geometry")]
    if repro_recs:
        nav.append(("reproductions.html", "Reproductions"))
    nav.append((DATA_FILE, "data.json"))
    common = {"nav": nav, "provenance": board.provenance, "plotly": PLOTLY_BUNDLE}

    def page(path: str, template: str, **context: Any) -> None:
        root = "../" * path.count("/")
        site.texts[path] = templating.render(template, root=root, current=path, **common, **context)

    # Rule colours: the same in every comparison figure and on the geometry map.
    colours = palette(sorted({r["rule"] for r in board.records}))

    # Comparison pages: the headline configurations of each architecture.
    compare_pages: set[str] = set()
    for block in board.matrix:
        for arch in block["architectures"]:
            members = [r["cells"][arch] for r in block["rows"] if r["cells"][arch] is not None]
            drawn = [(row, by_row.get(row_key(row), [])) for row in members
                     if any(rec["status"] in ("ok", "diverged") for rec in by_row.get(row_key(row), []))]
            if not drawn:
                continue
            path = compare_page(block["task"], block["profile"], arch, block["track"])
            plots, notes = compare_plots(drawn, colours, board.label)
            figures = _Figures()
            for plot in plots:
                figures.add(plot)
            others = [(board.label(row), row["status"], row["reason"]) for row in members
                      if all(rec["status"] not in ("ok", "diverged") for rec in by_row.get(row_key(row), []))]
            page(path, "site_compare.html.j2", task=block["task"], profile=block["profile"], architecture=arch,
                 track=board.track_titles.get(block["track"], block["track"]), figures=figures.items, notes=notes,
                 others=others, shown=[(board.label(row), pairing_page(row)) for row, _ in drawn])
            compare_pages.add(path)

    # Pairing pages.
    for row in rows:
        recs = by_row.get(row_key(row), [])
        context = _pairing_context(board, row, recs)
        context["compare"] = context["compare"] if context["compare"] in compare_pages else None
        for s in context["seeds"]:
            s["record"] = s["record"] if f"{RECORDS_DIR}/{s['run_id']}.json" in site.copies else None
        page(pairing_page(row), "site_pairing.html.j2", **context)

    # Index and tables.
    matrix = _matrix_blocks(board)
    index_figures = _Figures()
    for block, shown_block in zip(board.matrix, matrix, strict=True):
        members = [(row, by_row.get(row_key(row), [])) for r in block["rows"] for row in r["cells"].values() if row]
        shown_block["figures"] = []
        for spec in figure_specs():
            plot = scatter_plot(spec, members, colours, board.label) if isinstance(spec, ScatterFigure) else None
            if plot is not None:
                plot.legend_title = "rule"
                shown_block["figures"].append(index_figures.add(plot))
    page("index.html", "site_index.html.j2", blocks=matrix, gradient=colour_stops(),
         counts={"records": len(board.records), "rows": len(rows),
                 "ok": sum(r["status"] == "ok" for r in rows)})
    page("tables.html", "site_tables.html.j2", groups=_table_groups(board, rows, compare_pages),
         columns=board.columns, filters=_filters(rows))

    # Geometry.
    analysis = rsa.analyse(board.records) if board.records else {}
    page_of: dict[tuple[str, str, str], str] = {}
    for row in sorted(rows, key=lambda r: (r["track"] != "default", r["variant"] != "defaults")):
        page_of.setdefault((row["task"], row["architecture"], row["rule"]), pairing_page(row))
    slots, geometry_figures = _geometry(analysis, page_of, colours)
    page("geometry.html", "site_geometry.html.j2", slots=slots, figures=geometry_figures.items,
         analysis={k: analysis.get(k, "") for k in ("dissimilarity", "comparison", "projection")},
         notes=analysis.get("notes", []) if analysis else ["no records"])
    site.texts[GEOMETRY_FILE] = _dump(_rounded(analysis, 6))

    # Reproductions.
    repro = _reproduction_context(repro_recs) if repro_recs else None
    if repro is not None:
        page("reproductions.html", "site_reproductions.html.j2", **repro)

    # Data and assets.
    site.texts[DATA_FILE] = _dump({
        "generated_by": "biobench leaderboard",
        "provenance": board.provenance,
        "rows": [dict(r, page=pairing_page(r),
                      records=[f"{RECORDS_DIR}/{x['run_id']}.json" for x in by_row.get(row_key(r), [])])
                 for r in rows],
        "matrix": [
            {"task": b["task"], "profile": b["profile"], "track": b["track"], "architectures": b["architectures"],
             "rows": [{"rule": r["rule"], "family": r["family"],
                       "cells": {a: (None if c is None else {"page": pairing_page(c), "status": c["status"],
                                                             "reason": c["reason"],
                                                             f"{board.rank_key}_mean": c[f"{board.rank_key}_mean"],
                                                             f"{board.rank_key}_ci_low": c.get(f"{board.rank_key}_ci_low"),
                                                             f"{board.rank_key}_ci_high": c.get(f"{board.rank_key}_ci_high")})
                                 for a, c in r["cells"].items()}}
                      for r in b["rows"]]}
            for b in board.matrix
        ],
        "reproductions": repro["data"] if repro else None,
    })
    for name in STATIC_FILES:
        site.texts[f"{ASSETS_DIR}/{name}"] = resources.files("biobench.results").joinpath("static", name).read_text(encoding="utf-8")
    return site


# ---------------------------------------------------------------------------
# Writing and checking.
# ---------------------------------------------------------------------------


def plotly_bundle() -> Path:
    """The installed ``plotly`` package's plotly.js bundle (``package_data/plotly.min.js``)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.js bundle not found at {path}; reinstall plotly")
    return path


def _existing(site_dir: Path) -> set[str]:
    return {p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*") if p.is_file()} if site_dir.is_dir() else set()


def build_site(board: Board, site_dir: Path) -> list[str]:
    """Write the site into ``site_dir`` (files the records no longer produce are removed); returns notes."""
    site_dir = Path(site_dir)
    site = render_site(board)
    expected = set(site.texts) | set(site.copies) | {PLOTLY_BUNDLE}
    for stale in sorted(_existing(site_dir) - expected):
        (site_dir / stale).unlink()
    for path, text in site.texts.items():
        target = site_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for path, source in site.copies.items():
        target = site_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    bundle = site_dir / PLOTLY_BUNDLE
    source = plotly_bundle()
    if not bundle.is_file() or bundle.read_bytes() != source.read_bytes():
        bundle.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, bundle)
    for folder in sorted((p for p in site_dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    return site.notes


def numbers_close(expected: str, actual: str) -> bool:
    """Whether two texts are equal except for decimal numbers within :data:`GEOMETRY_TOLERANCE`."""
    split_e, split_a = _FLOAT.split(expected), _FLOAT.split(actual)
    if split_e != split_a:
        return False
    return all(
        math.isclose(float(a), float(b), **GEOMETRY_TOLERANCE)
        for a, b in zip(_FLOAT.findall(expected), _FLOAT.findall(actual), strict=True)
    )


def _first_difference(name: str, expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(actual.splitlines(), expected.splitlines(), f"{name} (committed)",
                                      f"{name} (rendered)", lineterm="", n=0))
    shown = "\n".join(line[:300] for line in lines[:12])
    return shown + ("\n..." if len(lines) > 12 else "")


def check_site(board: Board, site_dir: Path) -> list[str]:
    """Differences between the site in ``site_dir`` and what the records render to (empty: up to date)."""
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        return [f"{site_dir}/index.html is missing; run `biobench leaderboard`"]
    site = render_site(board)
    problems = []
    for path, text in sorted(site.texts.items()):
        target = site_dir / path
        if not target.is_file():
            problems.append(f"{target} is missing; run `biobench leaderboard`")
            continue
        actual = target.read_text(encoding="utf-8")
        same = actual == text or (path in TOLERANT_FILES and numbers_close(text, actual))
        if not same:
            problems.append(f"{target} differs from what the records render to:\n" + _first_difference(path, text, actual))
    for path, source in sorted(site.copies.items()):
        target = site_dir / path
        if not target.is_file() or target.read_bytes() != Path(source).read_bytes():
            problems.append(f"{target} is not a copy of the record {source}")
    bundle = site_dir / PLOTLY_BUNDLE
    if not bundle.is_file() or b"plotly.js" not in bundle.read_bytes()[:400]:
        problems.append(f"{bundle} is missing or is not plotly.js; run `biobench leaderboard`")
    expected = set(site.texts) | set(site.copies) | {PLOTLY_BUNDLE}
    for stale in sorted(_existing(site_dir) - expected):
        problems.append(f"{site_dir / stale} is not produced by the records (stale); run `biobench leaderboard`")
    return problems
