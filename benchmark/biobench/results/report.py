"""``biobench report``: PNG figures and one static HTML page, from result records alone.

Figures (one file each, per task/profile/architecture where it applies) are the
ones the metric classes declare (:func:`biobench.metrics.catalog.figures`): learning
curves, per-layer bars, curves over training and sweeps such as FGSM accuracy
against the perturbation; plus RDM grids (layers x rules), RDM similarity matrices
and the 2-D projection of every pairing (:mod:`biobench.results.geometry`). A
figure whose data no record holds is skipped with a note on the page; nothing is
drawn from made-up values.

The page (``index.html``) has no script and loads nothing from the network: the
figures sit beside it (``figures/*.png``) or, with ``embed_images``, inside it
as base64 data. It is rendered from a Jinja2 template with autoescaping, so every
string that comes from a record (plugin names, reasons) is escaped. Curves show
the mean over a pairing's ``ok`` seeds, with the min-max band when there are
several. The report knows nothing of the leaderboard: the caller passes the
leaderboard table's HTML in.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biobench.metrics import catalog
from biobench.metrics.base import (
    CurveFigure,
    HistoryFigure,
    LayerBarsFigure,
    ScatterFigure,
    SweepFigure,
)
from biobench.results import geometry as rsa
from biobench.results import templating

FIGURES_DIR = "figures"
DPI = 90
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
PNG_METADATA = {"Software": None}


@dataclass
class Figure:
    """One rendered figure: file name, section, title and caption."""

    name: str
    section: str
    title: str
    caption: str


@dataclass
class Report:
    """What a report holds: figures, notes on what could not be drawn, the RSA data."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    representations: dict[str, Any] = field(default_factory=dict)


SECTIONS = (
    ("learning", "Learning curves"),
    ("gradients", "Gradient bias and signal-to-noise ratio"),
    ("alignment", "Alignment over training"),
    ("robustness", "FGSM robustness"),
    ("cost", "Accuracy against cost"),
    ("rdm", "Representational dissimilarity matrices"),
    ("projection", "Representational geometry: similarity and projection"),
)


# ---------------------------------------------------------------------------
# Reading records.
# ---------------------------------------------------------------------------

Group = tuple[str, str, str]  # (task, profile, architecture)


def grouped(records: list[dict[str, Any]]) -> dict[Group, dict[str, list[dict[str, Any]]]]:
    """``ok`` records by (task, profile, architecture), then by rule, seeds in order."""
    out: dict[Group, dict[str, list[dict[str, Any]]]] = {}
    for r in sorted(records, key=lambda r: (r["task"], r["profile"], r["architecture"], r["rule"], r["seed"])):
        if r["status"] == "ok":
            out.setdefault((r["task"], r["profile"], r["architecture"]), {}).setdefault(r["rule"], []).append(r)
    return out


def rule_order(rules: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Rule names with the reference rule(s) first, then alphabetical."""
    def is_ref(name: str) -> bool:
        return bool((rules[name][0].get("rule_flags") or {}).get("is_reference"))

    return sorted(rules, key=lambda n: (not is_ref(n), n))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def history_series(record: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of one per-epoch history entry (``train_loss``, ``test_acc``...)."""
    h = record["metrics"].get("history") or {}
    epochs, values = h.get("epoch") or [], h.get(key) or []
    pairs = [(float(e), _finite(v)) for e, v in zip(epochs, values, strict=False)]
    pairs = [(e, v) for e, v in pairs if v is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


def per_layer(value: Any, path: tuple[str, ...] = ()) -> dict[str, float]:
    """``{layer: number}`` from a metric of the form ``{"per_layer": {...}, ...}``, after descending ``path``."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("per_layer"), dict):
        return {}
    return {k: v for k, v in ((k, _finite(v)) for k, v in value["per_layer"].items()) if v is not None}


def curve(value: Any, field: str, layer: str | None = None) -> tuple[list[float], list[float]]:
    """``(epoch, y)`` of a curve metric: a list of points ``{"epoch", field, "per_layer": {...}}``.

    ``layer`` None reads ``field`` (e.g. ``overall``), else ``per_layer[layer]``;
    points whose value is null are dropped.
    """
    if not isinstance(value, list):
        return [], []
    xs, ys = [], []
    for point in value:
        if not isinstance(point, dict):
            continue
        y = point.get(field) if layer is None else (point.get("per_layer") or {}).get(layer)
        x, y = _finite(point.get("epoch")), _finite(y)
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def curve_layers(value: Any) -> list[str]:
    """Layer names appearing in a curve metric's points, in stored order."""
    names: dict[str, None] = {}
    if isinstance(value, list):
        for point in value:
            if isinstance(point, dict) and isinstance(point.get("per_layer"), dict):
                names.update(dict.fromkeys(point["per_layer"]))
    return list(names)


def seed_band(series: list[tuple[list[float], list[float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean, min and max over seeds at the x values every seed has; None if there is none."""
    series = [(x, y) for x, y in series if x]
    if not series:
        return None
    common = sorted(set(series[0][0]).intersection(*(set(x) for x, _ in series[1:])))
    if not common:
        return None
    stacked = np.array([[dict(zip(x, y, strict=True))[c] for c in common] for x, y in series])
    return np.array(common), stacked.mean(0), stacked.min(0), stacked.max(0)


# ---------------------------------------------------------------------------
# Drawing.
# ---------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Any, folder: Path, name: str) -> None:
    fig.savefig(folder / name, dpi=DPI, metadata=PNG_METADATA)


class Palette:
    """One colour per rule and one marker per architecture, the same in every figure."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        from matplotlib import colormaps

        rules = sorted({r["rule"] for r in records})
        archs = sorted({r["architecture"] for r in records})
        cmap = colormaps["tab10" if len(rules) <= 10 else "tab20"]
        self.colours = {rule: cmap(i % cmap.N) for i, rule in enumerate(rules)}
        self.markers = {arch: MARKERS[i % len(MARKERS)] for i, arch in enumerate(archs)}

    def colour(self, rule: str) -> Any:
        """The rule's colour."""
        return self.colours.get(rule, "black")

    def marker(self, arch: str) -> str:
        """The architecture's marker."""
        return self.markers.get(arch, "o")


def _slug(*parts: str) -> str:
    return "_".join("".join(ch if ch.isalnum() or ch in "-." else "-" for ch in p) for p in parts)


def _group_title(group: Group) -> str:
    task, profile, arch = group
    return f"{arch} (task {task}, profile {profile})"


def _plot_band(ax: Any, series: list[tuple[list[float], list[float]]], colour: Any, label: str, **kw: Any) -> bool:
    band = seed_band(series)
    if band is None:
        return False
    x, mean, lo, hi = band
    ax.plot(x, mean, color=colour, label=label, marker="o" if len(x) <= 12 else None, ms=3, **kw)
    if len(series) > 1:
        ax.fill_between(x, lo, hi, color=colour, alpha=0.15, linewidth=0)
    return True


def draw_history(spec: HistoryFigure, groups: dict[Group, dict[str, list[dict[str, Any]]]], palette: Palette, folder: Path, report: Report) -> None:
    """Per-epoch history entries, one panel per entry, one line per rule, per architecture."""
    for group, rules in groups.items():
        fig = _new_figure(5 * len(spec.panels), 3.8)
        axes = np.atleast_1d(fig.subplots(1, len(spec.panels)))
        drawn = 0
        for ax, (entry, ylabel, title) in zip(axes, spec.panels, strict=True):
            for rule in rule_order(rules):
                drawn += _plot_band(ax, [history_series(r, entry) for r in rules[rule]], palette.colour(rule), rule)
            ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        if not drawn:
            report.notes.append(f"{spec.title.lower()} of {_group_title(group)}: no record has a per-epoch history")
            continue
        axes[-1].legend(fontsize=7, loc="best")
        name = f"{spec.stem}_{_slug(*group)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, spec.section, f"{spec.title} — {_group_title(group)}", spec.caption))


def _bars(ax: Any, data: dict[str, dict[str, float]], rules: list[str], palette: Palette) -> None:
    layers = list(dict.fromkeys(layer for rule in rules for layer in data.get(rule, {})))
    width = 0.8 / max(len(rules), 1)
    for i, rule in enumerate(rules):
        values = [data.get(rule, {}).get(layer, np.nan) for layer in layers]
        ax.bar(np.arange(len(layers)) + (i - (len(rules) - 1) / 2) * width, values, width,
               color=palette.colour(rule), label=rule)
    ax.set_xticks(np.arange(len(layers)), layers)


def _seed_mean(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in keys if any(k in d for d in dicts)}


def draw_layer_bars(spec: LayerBarsFigure, groups: dict[Group, dict[str, list[dict[str, Any]]]], palette: Palette, folder: Path, report: Report) -> None:
    """Per-layer bars of one metric per rule, with an optional reference line per layer."""
    for group, rules in groups.items():
        order = rule_order(rules)
        values = {rule: _seed_mean([per_layer(r["metrics"].get(spec.key), spec.path) for r in rules[rule]]) for rule in order}
        values = {k: v for k, v in values.items() if v}
        if not values:
            report.notes.append(f"{spec.title.lower()} of {_group_title(group)}: no record has per-layer `{spec.key}`")
            continue
        fig = _new_figure(6.5, 3.8)
        ax = fig.subplots()
        _bars(ax, values, [r for r in order if r in values], palette)
        if spec.reference_key:
            ref = _seed_mean([per_layer(r["metrics"].get(spec.reference_key)) for rule in order for r in rules[rule]])
            layers = list(dict.fromkeys(layer for v in values.values() for layer in v))
            for i, layer in enumerate(layers):
                if layer in ref:
                    ax.hlines(ref[layer], i - 0.45, i + 0.45, colors="black", linestyles="--",
                              label="backprop (same weights)" if i == 0 else None)
        ax.axhline(0 if spec.reference_line is None else spec.reference_line, color="grey", lw=0.8,
                   ls="-" if spec.reference_line is None else ":")
        ax.set(ylabel=spec.ylabel, title=spec.title)
        if spec.ylim:
            ax.set_ylim(*spec.ylim)
        if spec.log_scale and all(v > 0 for d in values.values() for v in d.values()):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        name = f"{spec.stem}_{_slug(*group)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, spec.section, f"{spec.title} — {_group_title(group)}", spec.caption))


def draw_curve(spec: CurveFigure, groups: dict[Group, dict[str, list[dict[str, Any]]]], palette: Palette, folder: Path, report: Report) -> None:
    """A metric's curve over training: one panel for the whole network, one per layer."""
    for group, rules in groups.items():
        order = rule_order(rules)
        values = {rule: [r["metrics"].get(spec.key) for r in rules[rule]] for rule in order}
        layers = list(dict.fromkeys(layer for vs in values.values() for v in vs for layer in curve_layers(v)))
        panels: list[str | None] = [None, *layers]
        fig = _new_figure(3.4 * len(panels) + 1.2, 3.6)
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        drawn = 0
        for ax, layer in zip(axes, panels, strict=True):
            for rule in order:
                drawn += _plot_band(ax, [curve(v, spec.field, layer) for v in values[rule]], palette.colour(rule), rule)
            ax.set(xlabel="epoch", ylabel=spec.ylabel, title=layer or f"{spec.field} (all layers)")
            if spec.ylim:
                ax.set_ylim(*spec.ylim)
        if not drawn:
            report.notes.append(f"{spec.title.lower()} of {_group_title(group)}: no record has `{spec.key}`")
            continue
        axes[-1].legend(fontsize=7)
        name = f"{spec.stem}_{_slug(*group)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, spec.section, f"{spec.title} — {_group_title(group)}", spec.caption))


def draw_sweep(spec: SweepFigure, groups: dict[Group, dict[str, list[dict[str, Any]]]], palette: Palette, folder: Path, report: Report) -> None:
    """A value against a swept parameter, one line per rule."""
    for group, rules in groups.items():
        fig = _new_figure(5.5, 3.8)
        ax = fig.subplots()
        drawn = 0
        for rule in rule_order(rules):
            series = []
            for r in rules[rule]:
                pairs = spec.points(r["metrics"])
                series.append(([x for x, _ in pairs], [y for _, y in pairs]))
            drawn += _plot_band(ax, series, palette.colour(rule), rule)
        if not drawn:
            report.notes.append(f"{spec.title.lower()} of {_group_title(group)}: no record has `{spec.key}`")
            continue
        ax.set(xlabel=spec.xlabel, ylabel=spec.ylabel, title=spec.title)
        if spec.ylim:
            ax.set_ylim(*spec.ylim)
        ax.legend(fontsize=7)
        name = f"{spec.stem}_{_slug(*group)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, spec.section, f"{spec.title} — {_group_title(group)}", spec.caption))


def _seed_mean_of(records: list[dict[str, Any]], read: Any) -> float | None:
    values = [v for v in (_finite(read(r["metrics"])) for r in records) if v is not None]
    return float(np.mean(values)) if values else None


def draw_scatter(spec: ScatterFigure, groups: dict[Group, dict[str, list[dict[str, Any]]]], palette: Palette, folder: Path, report: Report) -> None:
    """One point per pairing against each panel's x, every architecture of a task and profile together."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    by_task: dict[tuple[str, str], list[tuple[str, str, list[dict[str, Any]]]]] = {}
    for (task, profile, arch), rules in groups.items():
        by_task.setdefault((task, profile), []).extend((arch, rule, recs) for rule, recs in rules.items())
    for (task, profile), pairings in sorted(by_task.items()):
        fig = _new_figure(4.2 * len(spec.panels) + 1.6, 3.8)
        axes = np.atleast_1d(fig.subplots(1, len(spec.panels), sharey=True))
        drawn = 0
        for ax, (read_x, xlabel, log) in zip(axes, spec.panels, strict=True):
            for arch, rule, recs in pairings:
                x, y = _seed_mean_of(recs, read_x), _seed_mean_of(recs, spec.y)
                if x is None or y is None or (log and x <= 0):
                    continue
                ax.scatter([x], [y], color=palette.colour(rule), marker=palette.marker(arch), s=40,
                           edgecolors="black", linewidths=0.4)
                drawn += 1
            if log and ax.collections:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short decade overlap
            ax.set(xlabel=xlabel)
        if not drawn:
            report.notes.append(f"{spec.title.lower()} of task {task} (profile {profile}): no ok record has the values")
            continue
        axes[0].set(ylabel=spec.ylabel)
        handles = [Line2D([], [], color=palette.colour(r), marker="o", ls="", label=r) for r in sorted({p[1] for p in pairings})]
        handles += [Line2D([], [], color="grey", marker=palette.marker(a), ls="", label=a) for a in sorted({p[0] for p in pairings})]
        axes[-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{spec.title} — task {task}, profile {profile}")
        name = f"{spec.stem}_{_slug(task, profile)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, spec.section, f"{spec.title} — task {task}, profile {profile}", spec.caption))


#: The drawer of every kind of figure a metric can declare.
DRAWERS = {
    HistoryFigure: draw_history,
    LayerBarsFigure: draw_layer_bars,
    CurveFigure: draw_curve,
    SweepFigure: draw_sweep,
    ScatterFigure: draw_scatter,
}


def rdm_grids(records: list[dict[str, Any]], palette: Palette, folder: Path, report: Report) -> None:
    """One grid per architecture: rows are layers, columns are rules, cells the seed-mean RDMs."""
    pairings, probe, _ = rsa.collect(records)
    by_group: dict[tuple[str, str, str], list[rsa.PairingRDMs]] = {}
    for p in pairings:
        by_group.setdefault((p.task, p.profile, p.architecture), []).append(p)
    if not by_group:
        report.notes.append("RDM grids: no ok record holds representations")
        return
    labels = np.asarray(probe["labels"]) if probe else None
    per_class = probe["per_class"] if probe else rsa.PROBE_PER_CLASS
    for group, members in sorted(by_group.items()):
        ref_rules = {r["rule"] for r in records if (r.get("rule_flags") or {}).get("is_reference")}
        members = sorted(members, key=lambda p: (p.rule not in ref_rules, p.rule))
        layers = list(dict.fromkeys(n for p in members for n in p.layer_order))
        fig = _new_figure(1.9 * len(members) + 1.2, 1.9 * len(layers) + 0.6)
        axes = np.array(fig.subplots(len(layers), len(members), squeeze=False))
        image = None
        for j, p in enumerate(members):
            for i, layer in enumerate(layers):
                ax = axes[i, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(p.rule, fontsize=8)
                if j == 0:
                    ax.set_ylabel(layer, fontsize=8)
                if layer not in p.layers:
                    ax.text(0.5, 0.5, "no RDM", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                    continue
                image = ax.imshow(rsa.rdm_matrix(p.layers[layer]), cmap="viridis", vmin=0.0, vmax=2.0,
                                  interpolation="nearest")
                if labels is not None:
                    bounds = np.nonzero(np.diff(labels))[0] + 0.5
                    for b in bounds:
                        ax.axhline(b, color="white", lw=0.3)
                        ax.axvline(b, color="white", lw=0.3)
        if image is not None:
            fig.colorbar(image, ax=axes, shrink=0.8, label="1 − Pearson r")
        name = f"rdm_grid_{_slug(*group)}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(
            name, "rdm", f"RDMs (layers × rules) — {_group_title((group[0], group[1], group[2]))}",
            f"Correlation-distance RDMs of the probe set (the first {per_class} test images of each class, "
            "grouped by class; white lines separate classes), averaged over ok seeds. Spiking layers: spike counts."))


def similarity_and_projection(analysis: dict[str, Any], palette: Palette, folder: Path, report: Report) -> None:
    """Per depth slot: the pairing-by-pairing RDM similarity matrix and the MDS scatter."""
    slots = analysis.get("slots") or {}
    if not slots:
        report.notes.append("RDM similarity / projection: fewer than two pairings with RDMs")
        return
    for slot, block in slots.items():
        names = [f"{a}/{r}" for a, r in zip(block["architectures"], block["rules"], strict=True)]
        sim = np.array([[np.nan if v is None else v for v in row] for row in block["similarity"]], dtype=float)
        n = len(names)
        fig = _new_figure(max(4.5, 0.35 * n + 2.5), max(4.0, 0.35 * n + 1.5))
        ax = fig.subplots()
        image = ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
        ax.set_title(f"RDM similarity (Spearman ρ), {slot} layer")
        fig.colorbar(image, ax=ax, shrink=0.8)
        name = f"rdm_similarity_{slot}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(name, "projection", f"RDM similarity between pairings — {slot} layer",
                                     "Spearman rank correlation of seed-averaged RDM upper triangles (rsatoolbox)."))
        mds = block.get("mds")
        if not mds:
            report.notes.append(f"projection of the {slot} layer: MDS undefined (see representations.json notes)")
            continue
        coords = np.array(mds["coordinates"], dtype=float)
        fig = _new_figure(6.5, 4.8)
        ax = fig.subplots()
        for (x, y), arch, rule in zip(coords, block["architectures"], block["rules"], strict=True):
            ax.scatter([x], [y], color=palette.colour(rule), marker=palette.marker(arch), s=60, edgecolors="black", linewidths=0.5)
            ax.annotate(rule, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=palette.colour(r), marker="o", ls="", label=r) for r in sorted(set(block["rules"]))]
        handles += [Line2D([], [], color="grey", marker=palette.marker(a), ls="", label=a) for a in sorted(set(block["architectures"]))]
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax.margins(0.2)
        ax.set(xlabel="MDS 1", ylabel="MDS 2", title=f"Pairings by representational geometry, {slot} layer")
        ax.set_aspect("equal", adjustable="datalim")
        name = f"projection_{slot}.png"
        _save(fig, folder, name)
        report.figures.append(Figure(
            name, "projection", f"2-D projection of pairings — {slot} layer",
            f"Metric MDS of 1 − Spearman ρ between seed-averaged RDMs; colour: rule, marker: architecture; "
            f"stress {mds['stress']:.4g}."))


# ---------------------------------------------------------------------------
# The page.
# ---------------------------------------------------------------------------

def embed_figures(page: Path) -> None:
    """Rewrite ``page`` so that every ``figures/*.png`` it shows is inside it as base64 data."""
    folder = page.parent

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}"'

    text = re.sub(rf'<img src="({FIGURES_DIR}/[^"]+\.png)"', inline, page.read_text(encoding="utf-8"))
    page.write_text(text, encoding="utf-8")


def render_page(report: Report, table_html: str, provenance: str) -> str:
    """The HTML page text (figures already written under ``folder/figures``)."""
    from markupsafe import Markup

    sections = [
        {"id": section, "title": title, "figures": [f for f in report.figures if f.section == section]}
        for section, title in SECTIONS
    ]
    rep = report.representations
    notes = report.notes + [f"representations: {n}" for n in rep.get("notes", [])]
    return templating.render(
        "report.html.j2", provenance=provenance, table_html=Markup(table_html),
        sections=[s for s in sections if s["figures"]], figures_dir=FIGURES_DIR,
        representations=rep, notes=notes,
    )


def build_report(
    records: list[dict[str, Any]], out_dir: Path, table_html: str, provenance: str, embed_images: bool = False
) -> list[str]:
    """Write ``out_dir/index.html``, ``out_dir/figures/*.png`` and ``representations.json``; returns notes.

    ``table_html`` is the leaderboard table (already escaped HTML) shown at the top;
    ``provenance`` says which records the page shows.
    """
    out_dir = Path(out_dir)
    figures = out_dir / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):
        old.unlink()
    report = Report()
    if not records:
        report.notes.append("no records")
    palette = Palette(records)
    groups = grouped(records)
    for spec in catalog.figures():
        DRAWERS[type(spec)](spec, groups, palette, figures, report)
    rdm_grids(records, palette, figures, report)
    report.representations = rsa.analyse(records) if records else {}
    if report.representations:
        (out_dir / "representations.json").write_text(
            json.dumps(report.representations, indent=1, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8"
        )
    similarity_and_projection(report.representations, palette, figures, report)
    page = out_dir / "index.html"
    page.write_text(render_page(report, table_html, f"Rendered by `biobench report` from {provenance}."), encoding="utf-8")
    if embed_images:
        embed_figures(page)
    return report.notes


def check_report(out_dir: Path, table_html: str) -> list[str]:
    """Problems with a committed report: missing page, stale leaderboard table, missing figures."""
    page = Path(out_dir) / "index.html"
    if not page.exists():
        return [f"{page} is missing; run `biobench leaderboard`"]
    text = page.read_text(encoding="utf-8")
    problems = []
    if f'<div id="leaderboard-table">{table_html}</div>' not in text:
        problems.append(f"{page}: its leaderboard table differs from what the records render to")
    for src in _image_sources(text):
        if not src.startswith("data:") and not (Path(out_dir) / src).is_file():
            problems.append(f"{page}: figure {src} is missing")
    return problems


def _image_sources(text: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', text)
