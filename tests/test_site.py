"""The leaderboard's static site: pages, data, figures, --check, and (slow tier) the pages in a browser."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shutil
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from biobench.cli import main
from biobench.results import leaderboard as lb
from biobench.results import records
from biobench.results import site as site_mod

FIXTURES = Path(__file__).parent / "fixtures" / "records"
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
FA_MLP = "mnist__mlp__feedback_alignment__smoke__seed0__7080e115"
BACKPROP_MLP = ("mnist__mlp__backprop__smoke__seed0__b1a31332", "mnist__mlp__backprop__smoke__seed1__f6f60f56")


# ---------------------------------------------------------------------------
# Building sites.
# ---------------------------------------------------------------------------


def _fixture(run_id: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{run_id}.json").read_text())


def diverged_record() -> dict[str, Any]:
    """A third feedback-alignment seed on the MLP that diverged in its second epoch, after one finite epoch."""
    r = _fixture(FA_MLP)
    r.update(seed=2, run_id=r["run_id"].replace("seed0", "seed2"), status="diverged",
             reason="training loss became non-finite at epoch 1, step 30")
    r["config"]["run"]["seed"] = 2
    r["metrics"] = {"diverged_epoch": 2, "history": {"epoch": [1], "train_loss": [5.0e6], "test_acc": [0.2]}}
    r["metric_reasons"] = {}
    return records.validate_record(r)


def reproduction_records() -> list[dict[str, Any]]:
    """Two seeds of a reproduced setup: one published value that agrees (0.755), one that differs."""
    out = []
    for run_id in BACKPROP_MLP:
        r = _fixture(run_id)
        r["provenance"] = {"reproduction": {
            "setup": "example-2020-mlp", "budget": "full", "citation": "A. Author (2020)", "source": "Table 1",
            "notes": "short budget", "declared_by": "rule backprop (biobench)",
            "published": [
                {"metric": "test_acc", "value": 0.75, "tolerance": 0.01, "what": "final test accuracy", "epoch": None},
                {"metric": "test_acc", "value": 0.90, "tolerance": 0.01, "what": "epoch-1 accuracy", "epoch": 1},
            ],
        }}
        out.append(records.validate_record(r))
    return out


def write_board(root: Path, extra: list[dict[str, Any]] = (), reproductions: list[dict[str, Any]] = (),
                fixtures: bool = True) -> dict[str, Path]:
    """A leaderboard folder with the fixture records (and ``extra``), rendered with the site."""
    results = root / "leaderboard" / "results"
    results.mkdir(parents=True)
    if fixtures:
        for path in FIXTURES.glob("*.json"):
            shutil.copy(path, results)
    for r in extra:
        records.write_record(results / f"{r['run_id']}.json", r)
    for r in reproductions:
        records.write_record(root / "leaderboard" / "reproductions" / f"{r['run_id']}.json", r)
    out = root / "leaderboard"
    assert main(["leaderboard", "--results", str(results), "--out", str(out), "--no-readme", "--no-report"]) == 0
    return {"results": results, "out": out, "site": out / "site"}


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> dict[str, Path]:
    """The fixture records plus a diverged seed, and two reproduction records, rendered once."""
    return write_board(tmp_path_factory.mktemp("site"), [diverged_record()], reproduction_records())


@pytest.fixture(scope="module")
def frame(board) -> Any:
    return lb.summarise(records.read_records(board["results"]))


class _Links(HTMLParser):
    """Every src/href of a page, and the JSON of its figures."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.figures: dict[str, str] = {}
        self._figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("src", "href"):
            if values.get(key) is not None:
                self.links.append(values[key])
        if tag == "script" and values.get("type") == "application/json":
            self._figure = values["id"]

    def handle_data(self, data: str) -> None:
        if self._figure:
            self.figures[self._figure] = self.figures.get(self._figure, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._figure = None


def parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def figures_of(page: Path) -> dict[str, dict[str, Any]]:
    return {k: json.loads(v) for k, v in parse(page).figures.items()}


# ---------------------------------------------------------------------------
# Files and links.
# ---------------------------------------------------------------------------


def test_every_page_data_file_asset_and_record_copy_is_written(board, frame):
    site = board["site"]
    for name in ("index.html", "tables.html", "geometry.html", "reproductions.html", "data.json", "geometry.json",
                 "assets/site.css", "assets/site.js", "assets/plotly.min.js"):
        assert (site / name).is_file(), name
    rows = frame.to_dict(orient="records")
    assert sorted(p.name for p in (site / "pairings").glob("*.html")) == sorted(f"{site_mod.row_id(r)}.html" for r in rows)
    archs = {r["architecture"] for r in rows if r["seeds_ok"]}
    assert sorted(p.name for p in (site / "compare").glob("*.html")) == sorted(f"mnist__smoke__{a}__default.html" for a in archs)
    for source in board["results"].glob("*.json"):
        assert (site / "records" / source.name).read_bytes() == source.read_bytes()
    for source in (board["out"] / "reproductions").glob("*.json"):
        assert (site / "reproductions" / source.name).read_bytes() == source.read_bytes()
    assert b"plotly.js" in (site / "assets" / "plotly.min.js").read_bytes()[:400]


def test_every_link_is_relative_and_resolves_inside_the_site(board):
    site = board["site"]
    for page in pages(site):
        for link in parse(page).links:
            assert "://" not in link and not link.startswith(("/", "//", "data:")), (page.name, link)
            target = link.split("#")[0]
            if target:
                resolved = (page.parent / target).resolve()
                assert resolved.is_file(), (page.relative_to(site), link)
                assert site.resolve() in resolved.parents, (page.name, link)


def test_plotly_is_loaded_once_per_page_and_only_where_figures_are(board):
    site = board["site"]
    for page in pages(site):
        text = page.read_text()
        scripts = re.findall(r'<script src="([^"]+)"', text)
        has_figures = 'class="plot"' in text
        assert sum(s.endswith("assets/plotly.min.js") for s in scripts) == (1 if has_figures else 0), page.name
        assert sum(s.endswith("assets/site.js") for s in scripts) == 1


def test_the_site_of_no_records_says_so(tmp_path):
    paths = write_board(tmp_path, fixtures=False)
    text = (paths["site"] / "index.html").read_text()
    assert "No records yet." in text
    assert json.loads((paths["site"] / "data.json").read_text())["rows"] == []


# ---------------------------------------------------------------------------
# Data, matrix and tables.
# ---------------------------------------------------------------------------


def test_data_json_holds_the_leaderboard_rows_and_matrix(board, frame):
    data = json.loads((board["site"] / "data.json").read_text())
    rows = frame.to_dict(orient="records")
    assert [r["config_id"] for r in data["rows"]] == [r["config_id"] for r in rows]
    fa = next(r for r in data["rows"] if r["architecture"] == "mlp" and r["rule"] == "feedback_alignment")
    assert (fa["status"], fa["seeds"], fa["seeds_ok"], fa["test_acc_mean"]) == ("diverged", 3, 2, pytest.approx(0.476))
    assert len(fa["records"]) == 3 and all((board["site"] / p).is_file() for p in fa["records"])
    (block,) = data["matrix"]
    assert block["architectures"] == ["kan", "mlp", "snn"]
    cells = {r["rule"]: r["cells"] for r in block["rows"]}
    assert cells["backprop"]["mlp"]["test_acc_mean"] == pytest.approx(0.755)
    assert cells["hebbian"]["kan"]["status"] == "unsupported" and "needs dense" in cells["hebbian"]["kan"]["reason"]
    assert cells["sign_symmetry"]["mlp"] is None  # never run
    verdicts = [c["verdict"] for c in data["reproductions"]]
    assert verdicts == ["agrees", "differs"]


def _cell(index: str, rule: str, arch: str, archs: list[str]) -> str:
    row = re.search(rf'<span class="rule">{re.escape(rule)}</span>.*?</tr>', index, re.S).group(0)
    return re.findall(r"<td class=\"cell.*?</td>", row, re.S)[archs.index(arch)]


def test_matrix_cells_show_accuracy_interval_colour_and_tooltip(board):
    index = (board["site"] / "index.html").read_text()
    archs = ["kan", "mlp", "snn"]
    best = _cell(index, "backprop", "mlp", archs)
    assert '<span class="acc">75.50</span><span class="ci">[75.50, 75.50]</span>' in best
    from plotly import colors

    top = colors.sample_colorscale(site_mod.COLOUR_SCALE, [1.0])[0]
    bottom = colors.sample_colorscale(site_mod.COLOUR_SCALE, [0.0])[0]
    assert f"background:{top}" in best  # the best pairing sits at the top of the scale
    assert f"background:{bottom}" in _cell(index, "hebbian", "mlp", archs)  # the worst at the bottom
    assert f'href="{site_mod.PAIRINGS_DIR}/mnist__mlp__backprop__smoke__default__' in best
    for header in ("Bias hidden (cos)", "SNR / BP (init)", "Feedback ∠ (°)", "Signal ∠ (°)", "s/epoch", "Params"):
        assert f"<dt>{header}</dt>" in best
    unsupported = _cell(index, "hebbian", "kan", archs)
    assert '<span class="acc"></span>' in unsupported and 'class="ci"' not in unsupported
    assert "status: <b>unsupported</b>" in unsupported and "needs dense" in unsupported
    assert 'href="pairings/mnist__kan__hebbian' in unsupported
    never = _cell(index, "sign_symmetry", "mlp", archs)
    assert "status: <b>not run</b>" in never and "href=" not in never


def test_tables_carry_sort_keys_and_filter_attributes(board, frame):
    text = (board["site"] / "tables.html").read_text()
    rows = re.findall(r"<tr id=\"row-([^\"]+)\"([^>]*)>(.*?)</tr>", text, re.S)
    assert len(rows) == len(frame)
    by_id = {rid: (attrs, cells) for rid, attrs, cells in rows}
    fa = next(k for k in by_id if k.startswith("mnist__mlp__feedback_alignment"))
    attrs, cells = by_id[fa]
    assert 'data-status="diverged"' in attrs and 'data-family="feedback alignment"' in attrs
    assert 'data-weight-transport="no"' in attrs and 'data-global-error="yes"' in attrs
    assert '<td data-sort="47.6" class="num">47.60 ± 9.76</td>' in cells
    headers = re.findall(r'<th scope="col" title="[^"]*" data-type="(\w+)"[^>]*>([^<]+)</th>', text)
    assert ("num", "Test acc. (%)") in headers and ("text", "Rule") in headers and ("text", "Status") in headers
    for value in ("feedback alignment", "hebbian", "reference"):
        assert f'<input type="checkbox" name="family" value="{value}" checked>' in text
    for value in ("ok", "diverged", "unsupported"):
        assert f'<input type="checkbox" name="status" value="{value}" checked>' in text


@pytest.mark.parametrize("text, expected", [
    ("91.35 ± 0.28", ("num", "91.35")), ("[90.91, 91.70]", ("num", "90.91")), ("1,234", ("num", "1234.0")),
    ("-27.90 (p=0.154, no difference)", ("num", "-27.9")), ("—", ("none", "")), ("", ("none", "")),
    ("2/3", ("num", "2.0")), ("unsupported (3/3)", ("text", "unsupported (3/3)")), ("1e-05", ("num", "1e-05")),
])
def test_sort_values(text, expected):
    assert site_mod.sort_value(text) == expected


# ---------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------


def test_every_figure_is_a_valid_plotly_figure(board):
    import plotly.graph_objects as go

    count = 0
    for page in pages(board["site"]):
        for spec in figures_of(page).values():
            go.Figure(data=spec["data"], layout=spec["layout"])  # raises on an unknown property or bad value
            count += 1
    assert count > 20


def _legend(spec: dict[str, Any]) -> list[str]:
    return [html.unescape(t["name"]) for t in spec["data"] if t.get("showlegend", True) and t.get("name")]


def test_pairing_page_figures_over_seeds(board):
    page = next((board["site"] / "pairings").glob("mnist__mlp__feedback_alignment__*.html"))
    text = page.read_text()
    titles = re.findall(r"<figcaption><b>([^<]+)\.</b>", text)
    assert titles[0] == "Learning curves"
    for title in ("Gradient bias over training", "Feedback-weight angle over training", "Error-signal angle over training",
                  "FGSM accuracy vs perturbation", "Representational dissimilarity matrices"):
        assert title in titles
    specs = list(figures_of(page).values())
    learning = specs[0]
    assert _legend(learning) == ["seed 0", "seed 1", "seed 2 diverged at epoch 2"]
    assert learning["layout"]["yaxis"]["type"] == "log" and "yaxis2" in learning["layout"]
    marker = next(t for t in learning["data"] if t.get("marker", {}).get("symbol") == "x" and t["xaxis"] == "x")
    assert marker["x"] == [2]
    for key in ("xaxis", "xaxis2"):
        assert learning["layout"][key]["tickformat"] == "d" and learning["layout"][key]["dtick"] == 1
    assert learning["layout"]["legend"]["x"] > 1  # the legend sits right of the panels, never on the data
    bias = specs[titles.index("Gradient bias over training")]
    assert _legend(bias) == ["mean over hidden layers", "layer fc1", "layer fc2"]
    rdm = specs[titles.index("Representational dissimilarity matrices")]
    assert [len(t["z"]) for t in rdm["data"]] == [50, 50] and rdm["data"][0]["x"][0] == "0·3"
    assert "<b>Seed</b>" not in text and f"../records/{FA_MLP}.json" in text
    assert "&#34;feedback_scale&#34;: 1.0" in text and "git_revision" in text  # configuration and provenance


def test_compare_page_lists_every_rule_once_and_marks_divergence(board):
    spec = list(figures_of(board["site"] / "compare" / "mnist__smoke__mlp__default.html").values())[0]
    legend = _legend(spec)
    assert legend == ["backprop (reference)", "feedback_alignment (1/3 seeds diverged)", "hebbian"]
    groups = {t.get("legendgroup") for t in spec["data"] if t.get("legendgroup")}
    assert len(groups) == len(legend)


def test_accuracy_against_cost_has_one_linked_point_per_pairing(board, frame):
    rows = [r for r in frame.to_dict(orient="records") if r["seeds_ok"]]
    index = board["site"] / "index.html"
    (spec,) = [f for f in figures_of(index).values() if f["links"]]
    timed = [t for t in spec["data"] if "customdata" in t]
    assert {t["xaxis"] for t in timed} == {"x"}  # the fixtures have time per epoch only: one panel
    points = {(html.unescape(text), link) for t in timed for text, link in zip(t["text"], t["customdata"], strict=True)}
    assert points == {(f"{lb.rule_text(r)} on {r['architecture']}", site_mod.pairing_page(r)) for r in rows}
    assert spec["layout"]["xaxis"]["type"] == "log"
    assert sorted(_legend(spec)) == sorted({r["rule"] for r in rows} | {r["architecture"] for r in rows})
    assert "Not drawn, no ok record has the values: MACs per example" in index.read_text()
    compare = list(figures_of(board["site"] / "compare" / "mnist__smoke__mlp__default.html").values())
    (cost,) = [f for f in compare if f["links"]]
    assert all(link.startswith("../pairings/mnist__mlp__") for t in cost["data"] for link in t.get("customdata", []))


def synthetic_record(rule: str, seed: int, losses: list[float], accs: list[float], status: str = "ok") -> dict[str, Any]:
    """A record of ``rule`` on the MLP with the given per-epoch losses and accuracies."""
    r = _fixture(FA_MLP)
    r.update(rule=rule, seed=seed, status=status, run_id=f"mnist__mlp__{rule}__smoke__seed{seed}__00000000")
    r["config"]["rule"]["name"] = rule
    r["config"]["run"]["seed"] = seed
    r["rule_flags"] = dict(r["rule_flags"], is_reference=False, family="test")
    epochs = list(range(1, len(losses) + 1))
    r["metrics"] = {"history": {"epoch": epochs, "train_loss": losses, "test_acc": accs}, "test_acc": accs[-1],
                    "epochs": len(epochs)}
    r["metric_reasons"] = {}
    return records.validate_record(r)


def _learning_figure(recs: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    frame = lb.summarise(recs)
    rows = frame.to_dict(orient="records")
    by_row = site_mod.records_by_row(recs)
    plots, _ = site_mod.compare_plots([(row, by_row[site_mod.row_key(row)]) for row in rows],
                                      site_mod.palette(sorted({r["rule"] for r in recs})), lb.rule_text)
    plot = plots[0]
    return site_mod.figure_spec(plot), plot.notes


def test_a_huge_loss_is_clipped_on_a_log_axis_without_swamping_the_others():
    epochs = 12
    normal = {f"rule_{i:02d}": [1.0 / (e + 1 + i) for e in range(epochs)] for i in range(29)}
    recs = [synthetic_record(rule, 0, losses, [0.5] * epochs) for rule, losses in normal.items()]
    exploding = [10.0 ** (2 * e) for e in range(epochs)]
    recs.append(synthetic_record("exploding", 0, exploding, [0.1] * epochs))
    spec, notes = _learning_figure(recs)
    layout = spec["layout"]
    assert layout["yaxis"]["type"] == "log" and layout["yaxis"]["dtick"] == 1
    ceiling = site_mod.LOSS_CLIP_FACTOR * statistics.median([v for losses in normal.values() for v in losses] + exploding)
    trace = next(t for t in spec["data"] if t.get("name") == "exploding" and t["xaxis"] == "x")
    clipped = [e for e, v in enumerate(exploding) if v > ceiling]
    assert 1 < ceiling < 100 and clipped == list(range(1, epochs))  # median ~0.05: 10^0 stays, 10^2... are clipped
    assert [trace["y"][e] for e in clipped] == [pytest.approx(ceiling, rel=1e-4)] * len(clipped)
    assert trace["customdata"][-1] == pytest.approx(1e22)  # hover gives the true value
    assert [trace["marker"]["symbol"][e] for e in (0, 1, 2)] == ["circle", "triangle-up", "triangle-up"]
    assert len(notes) == 1 and f"{len(clipped)} value(s)" in notes[0] and "drawn at that ceiling" in notes[0]
    others = [v for t in spec["data"] if t["xaxis"] == "x" and t.get("name", "").startswith("rule_") for v in t["y"]]
    assert max(others) < ceiling and min(others) > 0  # the other rules are drawn as they are
    assert sorted(_legend(spec)) == sorted({r["rule"] for r in recs})  # every rule, once
    assert layout["xaxis"]["dtick"] == 2 and layout["xaxis"]["tickformat"] == "d"  # integers, <= 10 ticks


@pytest.mark.parametrize("caption, expected", [
    ("Mean over ok seeds; shaded: min-max over seeds.", "One line per seed."),
    ("Mean over ok seeds; each ε attacks the trained network with its own gradient sign.",
     "Each ε attacks the trained network with its own gradient sign. One line per seed."),
    ("Angle between the signals; the first panel is the mean over hidden layers.", "Angle between the signals. One line per seed."),
])
def test_captions_are_rewritten_for_a_page_over_seeds(caption, expected):
    assert site_mod.seed_caption(caption, "One line per seed.") == expected


def test_log_ticks_are_decades_or_written_out_values():
    assert site_mod.log_ticks([0.1, 5.0, 300.0]) == {"dtick": 1}
    ticks = site_mod.log_ticks([0.052, 0.3])
    assert ticks["tickvals"] == [0.05, 0.1, 0.2] and ticks["ticktext"] == ["0.05", "0.1", "0.2"]
    assert site_mod.log_ticks([0.8, 1.3])["ticktext"] == ["0.7", "0.8", "0.9", "1"]  # 1-2-5 gives too few
    assert site_mod.log_ticks([2.1, 2.3]) == {}  # too narrow for round values
    assert site_mod.log_ticks([]) == {} and site_mod.log_ticks([0.0, -1.0]) == {}


def test_thirty_rules_get_distinct_colour_and_dash_pairs():
    styles = site_mod.palette([f"rule_{i:02d}" for i in range(30)])
    assert len(set(styles.values())) == 30


# ---------------------------------------------------------------------------
# Geometry and reproductions.
# ---------------------------------------------------------------------------


def test_geometry_map_has_hover_labels_links_and_stress(board):
    page = board["site"] / "geometry.html"
    text = page.read_text()
    analysis = json.loads((board["site"] / "geometry.json").read_text())
    specs = list(figures_of(page).values())
    maps = [s for s in specs if s["data"][0]["type"] == "scatter"]
    assert len(maps) == len(analysis["slots"]) == 2
    for slot, spec in zip(analysis["slots"], maps, strict=True):
        block = analysis["slots"][slot]
        points = [t for t in spec["data"] if "customdata" in t]
        assert sum(len(t["x"]) for t in points) == len(block["pairings"])
        labels = [label for t in points for label in t["text"]]
        assert "feedback_alignment on mlp (layer fc1)" in labels or "feedback_alignment on mlp (layer fc2)" in labels
        assert all(link.startswith("pairings/") for t in points for link in t["customdata"])
        assert all(t["mode"] == "markers" and not t["showlegend"] for t in points)  # no printed labels
        legend = {t["name"]: t["marker"]["symbol"] for t in spec["data"] if t.get("showlegend", True)}
        assert {name for name, symbol in legend.items() if symbol == "circle"} >= set(block["rules"])
        assert f"MDS stress {block['mds']['stress']:.4g}" in text


def test_reproductions_page_compares_published_and_measured(board):
    text = (board["site"] / "reproductions.html").read_text()
    assert "1 agree, 1 differ, 0 not measured" in text
    assert '<td class="num">75.00</td><td class="num">75.50 ± 0.00 (2/2)</td><td class="num">+0.50</td>' in text
    assert 'verdict-differs">differs</td>' in text
    assert f'href="reproductions/{BACKPROP_MLP[0]}.json"' in text
    assert 'href="reproductions.html"' in (board["site"] / "index.html").read_text()


def test_without_reproduction_records_there_is_no_reproduction_page(rendered_board):
    site = rendered_board / "leaderboard" / "site"
    assert not (site / "reproductions.html").exists()
    assert "reproductions.html" not in (site / "index.html").read_text()


# ---------------------------------------------------------------------------
# Escaping.
# ---------------------------------------------------------------------------

EVIL_RULE = '<img src=x onerror="alert(1)">'
EVIL_REASON = "</script><script>alert(2)</script>"


def evil_records() -> list[dict[str, Any]]:
    out = []
    for run_id in (FA_MLP, "mnist__kan__hebbian__smoke__seed0__6d8bd8f7"):
        r = _fixture(run_id)
        if r["status"] == "ok":
            r["rule"] = r["config"]["rule"]["name"] = EVIL_RULE
            r["rule_flags"] = dict(r["rule_flags"], family=EVIL_RULE)
        else:
            r["reason"] = EVIL_REASON
        out.append(records.validate_record(r))
    return out


@pytest.fixture(scope="module")
def evil_board(tmp_path_factory) -> dict[str, Path]:
    return write_board(tmp_path_factory.mktemp("evil"), evil_records(), fixtures=False)


def test_strings_from_records_are_escaped_everywhere(evil_board):
    site = evil_board["site"]
    for page in pages(site):
        text = page.read_text()
        assert EVIL_RULE not in text and "<script>alert" not in text, page.name
        assert text.count("</script>") == text.count("<script"), page.name  # no script block closed early
    assert str(escape(EVIL_RULE)) in (site / "index.html").read_text()
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in (site / "index.html").read_text()
    for page in pages(site):
        for spec in figures_of(page).values():
            names = [t.get("name", "") for t in spec["data"]]
            assert EVIL_RULE not in names


def test_script_json_cannot_close_its_script_block():
    text = site_mod.script_json({"a": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><b>&"}


# ---------------------------------------------------------------------------
# Determinism and --check.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(board) -> site_mod.Board:
    """What the site of ``board`` shows (the leaderboard rendered once)."""
    rendered = lb.render(board["results"], board["out"], None)
    return lb.site_board(rendered, board["results"], board["out"])


def test_rendering_is_deterministic_and_check_passes(board, model):
    first = site_mod.render_site(model)
    second = site_mod.render_site(lb.site_board(lb.render(board["results"], board["out"], None), board["results"], board["out"]))
    assert first.texts == second.texts and first.copies == second.copies
    assert site_mod.check_site(model, board["site"]) == []
    for name, text in first.texts.items():
        if name.endswith(".html"):
            assert not re.search(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d", text) or name.startswith("pairings/"), name


@pytest.fixture
def copied(tmp_path, board, model) -> dict[str, Any]:
    """A private copy of ``board``, and what its site shows."""
    shutil.copytree(board["out"], tmp_path / "leaderboard")
    out = tmp_path / "leaderboard"
    return {"results": out / "results", "out": out, "site": out / "site",
            "model": dataclasses.replace(model, results_dir=out / "results", reproductions_dir=out / "reproductions")}


def _check(paths: dict[str, Any]) -> list[str]:
    return site_mod.check_site(paths["model"], paths["site"])


def test_check_fails_on_an_edited_page(copied):
    page = next((copied["site"] / "pairings").glob("mnist__mlp__backprop__*.html"))
    page.write_text(page.read_text().replace("75.50", "76.50", 1))
    (problem,) = _check(copied)
    assert page.name in problem and "differs" in problem and "76.50" in problem


def test_check_fails_on_edited_data_a_missing_copy_a_stale_file_and_a_missing_bundle(copied):
    data = copied["site"] / "data.json"
    data.write_text(data.read_text().replace('"test_acc_mean": 0.755', '"test_acc_mean": 0.756', 1))
    (copied["site"] / "records" / f"{FA_MLP}.json").unlink()
    (copied["site"] / "pairings" / "old.html").write_text("stale")
    (copied["site"] / "assets" / "plotly.min.js").unlink()
    problems = "\n".join(_check(copied))
    assert "data.json differs" in problems
    assert f"{FA_MLP}.json is not a copy of the record" in problems
    assert "old.html is not produced by the records (stale)" in problems
    assert "plotly.min.js is missing" in problems


def test_check_tolerates_last_digit_differences_of_the_mds_only(copied):
    path = copied["site"] / "geometry.json"
    text = path.read_text()
    found = re.search(r'"coordinates": \[\s*\[\s*(-?\d+\.\d+)', text)
    start, end = found.span(1)
    value = float(found.group(1))
    path.write_text(text[:start] + f"{value + 1e-5:.6f}" + text[end:])
    assert _check(copied) == []
    path.write_text(text[:start] + f"{value + 0.5:.6f}" + text[end:])
    assert "geometry.json differs" in "\n".join(_check(copied))


def test_numbers_close():
    assert site_mod.numbers_close('{"x": 0.12345, "n": 3}', '{"x": 0.12346, "n": 3}')
    assert not site_mod.numbers_close('{"x": 0.12345, "n": 3}', '{"x": 0.2, "n": 3}')
    assert not site_mod.numbers_close('{"x": 0.12345, "n": 3}', '{"x": 0.12345, "n": 4}')
    assert not site_mod.numbers_close('{"x": 0.1}', '{"y": 0.1}')


def test_write_removes_files_the_records_no_longer_produce(copied):
    stale = copied["site"] / "pairings" / "gone.html"
    stale.write_text("old")
    assert site_mod.build_site(copied["model"], copied["site"]) == []
    assert not stale.exists() and _check(copied) == []


def test_the_leaderboard_check_command_covers_the_site(tmp_path, rendered_board, capsys):
    shutil.copytree(rendered_board, tmp_path, dirs_exist_ok=True)
    args = ["leaderboard", "--results", str(tmp_path / "leaderboard" / "results"), "--out",
            str(tmp_path / "leaderboard"), "--readme", str(tmp_path / "README.md"), "--check"]
    index = tmp_path / "leaderboard" / "site" / "index.html"
    index.write_text(index.read_text().replace("75.50", "75.51", 1))
    assert main(args) == 1
    assert "site/index.html differs" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# In a browser (slow tier): Playwright driving the system's Chromium.
# ---------------------------------------------------------------------------


def _chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name) if not name.startswith("/") else (name if Path(name).exists() else None)
        if path:
            return path
    pytest.skip(f"headless Chromium not found ({', '.join(BROWSERS)}); install it with: apt-get install -y chromium")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
    executable = _chromium()
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where the screenshots go: ``$BIOBENCH_SCREENSHOTS`` or a temporary folder."""
    folder = Path(os.environ.get("BIOBENCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """A page of the site opened in a fresh context that records errors, foreign requests and dialogs."""

    def __init__(self, browser, site: Path, width: int = 1400) -> None:
        self.site = site.resolve()
        self.prefix = self.site.as_uri() + "/"
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("request", self._request)
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))

    def _inside(self, url: str) -> bool:
        return url.startswith(self.prefix) or url.startswith(("data:", "blob:", "about:"))

    def _request(self, request) -> None:
        if not self._inside(request.url):
            self.problems.append(f"request outside the site: {request.url}")

    def _route(self, route) -> None:
        if self._inside(route.request.url):
            route.continue_()
        else:
            route.abort()

    def open(self, path: str) -> Any:
        self.page.goto((self.site / path).as_uri())
        self.page.wait_for_load_state("load")
        expected = self.page.locator("div.plot").count()
        if expected:
            self.page.wait_for_function(
                "n => document.querySelectorAll('div.plot .main-svg').length >= n", arg=expected, timeout=30000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, board):
    opened = []

    def make(site: Path | None = None, width: int = 1400) -> Visit:
        v = Visit(browser, site or board["site"], width)
        opened.append(v)
        return v

    yield make
    for v in opened:
        v.close()


@pytest.mark.slow
def test_every_page_loads_without_errors_or_requests_elsewhere(visit, board):
    v = visit()
    for page in pages(board["site"]):
        path = page.relative_to(board["site"]).as_posix()
        opened = v.open(path)
        plots = opened.locator("div.plot").count()
        assert opened.locator("div.plot .main-svg").count() >= plots, path
    assert v.problems == []


@pytest.mark.slow
def test_the_browser_check_sees_foreign_requests_and_script_errors(visit, board, tmp_path):
    """The listeners themselves can fail: a page that loads from another host or throws is caught."""
    site = tmp_path / "site"
    shutil.copytree(board["site"], site)
    index = site / "index.html"
    index.write_text(index.read_text().replace(
        "</body>", '<script src="https://cdn.example.invalid/x.js"></script><script>undefinedFunction()</script></body>'))
    v = visit(site)
    v.open("index.html")
    text = "\n".join(v.problems)
    assert "request outside the site: https://cdn.example.invalid/x.js" in text
    assert "undefinedFunction" in text


def _column(page, table, header: str) -> list[str]:
    index = [h.strip(" ↕▲▼") for h in table.locator("thead th").all_inner_texts()].index(header)
    return table.locator(f"tbody tr:not([hidden]) td:nth-child({index + 1})").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-sort'))")


@pytest.mark.slow
def test_clicking_a_header_sorts_the_rows(visit, screenshots):
    v = visit()
    page = v.open("tables.html")
    table = page.locator("section.table-group", has=page.locator("h2", has_text="mlp")).locator("table")
    before = table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    header = table.locator("thead th", has_text="SNR / BP (init)")
    header.click()
    values = _column(page, table, "SNR / BP (init)")
    numbers = [float(x) for x in values if x]
    assert numbers == sorted(numbers, reverse=True) and values[len(numbers):] == [""] * (len(values) - len(numbers))
    assert header.get_attribute("aria-sort") == "descending"
    after = table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    assert sorted(after) == sorted(before) and after != before
    header.click()
    values = _column(page, table, "SNR / BP (init)")
    numbers = [float(x) for x in values if x]
    assert numbers == sorted(numbers) and header.get_attribute("aria-sort") == "ascending"
    rule = table.locator("thead th", has_text="Rule")
    rule.click()
    names = _column(page, table, "Rule")
    assert names == sorted(names)
    page.screenshot(path=str(screenshots / "tables.png"), full_page=True)


@pytest.mark.slow
def test_filters_hide_rows(visit, board, frame):
    v = visit()
    page = v.open("tables.html")
    total = len(frame)
    assert page.locator("#filter-count").inner_text() == f"{total} of {total} rows shown"
    page.locator("input[name=status][value=unsupported]").uncheck()
    unsupported = int((frame["status"] == "unsupported").sum())
    assert unsupported > 0
    assert page.locator("tr[data-status=unsupported]:visible").count() == 0
    assert page.locator("table.board tbody tr:visible").count() == total - unsupported
    assert page.locator("#filter-count").inner_text() == f"{total - unsupported} of {total} rows shown"
    assert page.locator("ul.reasons li:visible", has_text="needs dense").count() == 0
    page.locator("select[name=weight_transport]").select_option("yes")
    visible = page.locator("table.board tbody tr:visible").evaluate_all("rows => rows.map(r => r.id)")
    transport = frame[(frame["status"] != "unsupported") & (frame["weight_transport"] == True)]  # noqa: E712
    assert sorted(visible) == sorted(f"row-{site_mod.row_id(r)}" for r in transport.to_dict(orient="records"))
    assert 0 < len(visible) < total - unsupported
    page.locator("select[name=weight_transport]").select_option("")
    page.locator("input[name=rule_name]").fill("hebb")
    visible = page.locator("table.board tbody tr:visible").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert visible == ["hebbian"]  # the kan and snn hebbian rows are unsupported, filtered out above
    page.locator("input[name=family][value=hebbian]").uncheck()
    assert page.locator("table.board tbody tr:visible").count() == 0
    assert page.locator("p.empty:visible").count() == 3
    assert v.problems == []


@pytest.mark.slow
def test_hovering_a_matrix_cell_shows_its_tooltip(visit, screenshots):
    v = visit()
    page = v.open("index.html")
    tooltip = page.locator("#tooltip")
    assert tooltip.is_hidden()
    row = page.locator("table.matrix tbody tr", has=page.locator("span.rule", has_text="feedback_alignment"))
    row.locator("td.cell").nth(1).hover()
    assert tooltip.is_visible()
    text = tooltip.inner_text()
    for expected in ("feedback_alignment on mlp", "status: diverged", "Bias hidden (cos)", "SNR / BP (init)",
                     "Feedback ∠ (°)", "s/epoch", "1/3 seeds diverged"):
        assert expected in text, (expected, text)
    box, tip = row.locator("td.cell").nth(1).bounding_box(), tooltip.bounding_box()
    assert tip["y"] >= box["y"] + box["height"] - 1 or tip["y"] + tip["height"] <= box["y"] + 1  # beside, not over
    page.screenshot(path=str(screenshots / "matrix.png"), full_page=True)
    hebbian = page.locator("table.matrix tbody tr", has=page.locator("span.rule", has_text="hebbian"))
    cell = hebbian.locator("td.cell").nth(0)
    assert cell.locator(".acc").inner_text() == ""
    cell.hover()
    assert "status: unsupported" in tooltip.inner_text() and "needs dense" in tooltip.inner_text()
    page.mouse.move(0, 0)
    assert tooltip.is_hidden()
    assert v.problems == []


@pytest.mark.slow
def test_a_matrix_cell_opens_the_pairing_page(visit, screenshots):
    v = visit()
    page = v.open("index.html")
    row = page.locator("table.matrix tbody tr", has=page.locator("span.rule", has_text="feedback_alignment"))
    row.locator("td.cell").nth(1).click()
    page.wait_for_url("**/pairings/mnist__mlp__feedback_alignment__*.html")
    page.wait_for_function("() => document.querySelectorAll('div.plot .main-svg').length >= 5")
    assert page.locator("h1").inner_text().startswith("feedback_alignment")
    legend = page.locator("div.plot").first.locator(".legendtext").all_text_contents()
    assert legend == ["seed 0", "seed 1", "seed 2 diverged at epoch 2"]
    page.screenshot(path=str(screenshots / "pairing.png"), full_page=True)
    link = page.locator("a", has_text=f"{FA_MLP}.json")
    link.click()
    page.wait_for_load_state("load")
    assert json.loads(page.locator("body").inner_text())["run_id"] == FA_MLP
    assert v.problems == []


@pytest.mark.slow
def test_numbers_do_not_wrap(visit):
    v = visit(width=1000)
    for path, selector in (("tables.html", "table.board td.num"), ("index.html", "table.matrix .acc, table.matrix .ci")):
        page = v.open(path)
        lines = page.locator(selector).evaluate_all(
            """cells => cells.filter(c => c.textContent.trim()).map(c => {
                 const r = document.createRange(); r.selectNodeContents(c);
                 return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size; })""")
        assert lines and set(lines) == {1}, path


@pytest.mark.slow
def test_geometry_map_shows_a_label_on_hover(visit, screenshots):
    v = visit()
    page = v.open("geometry.html")
    point = page.evaluate("""() => {
        const gd = document.querySelector('div.plot');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd.data[0];
        const box = gd.getBoundingClientRect();
        return [box.left + xa._offset + xa.l2p(t.x[0]), box.top + ya._offset + ya.l2p(t.y[0]), t.text[0]];
    }""")
    page.mouse.move(point[0], point[1])
    label = page.locator("div.plot").first.locator("g.hovertext")
    label.wait_for(timeout=5000)
    assert html.unescape(point[2]) in label.text_content()
    page.screenshot(path=str(screenshots / "geometry.png"), full_page=True)
    assert v.problems == []


@pytest.mark.slow
def test_screenshots_of_the_other_views(visit, screenshots):
    v = visit()
    for path, name in (("compare/mnist__smoke__mlp__default.html", "compare.png"),
                       ("reproductions.html", "reproductions.png")):
        page = v.open(path)
        page.screenshot(path=str(screenshots / name), full_page=True)
        assert (screenshots / name).stat().st_size > 10_000
    assert v.problems == []


@pytest.mark.slow
def test_record_strings_never_run_as_markup_in_the_browser(visit, evil_board):
    v = visit(evil_board["site"])
    for page in pages(evil_board["site"]):
        v.open(page.relative_to(evil_board["site"]).as_posix())
    index = v.open("index.html")
    assert EVIL_RULE in index.locator("table.matrix").inner_text()
    assert index.locator("table.matrix img").count() == 0
    assert v.problems == []
