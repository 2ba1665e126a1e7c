"""``biobench report``: figures and the HTML page from the committed fixture records."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markupsafe import escape

from biobench.cli import main
from biobench.results import leaderboard as lb
from biobench.results import records
from biobench.results import report as report_mod

FIXTURES = Path(__file__).parent / "fixtures" / "records"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with: apt-get install -y chromium"


@pytest.fixture(scope="module")
def fixture_records() -> list[dict]:
    """The committed fixture records (real smoke runs), validated."""
    return records.read_records(FIXTURES)


@pytest.fixture(scope="module")
def rendered(rendered_board) -> Path:
    """The report of the fixture records (rendered once per session with the leaderboard)."""
    return rendered_board / "leaderboard" / "report"


def _build(recs: list[dict], out: Path) -> list[str]:
    return report_mod.build_report(
        recs, out, table_html=lb.html_table(lb.summarise(recs)), provenance=lb.provenance(recs)
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_every_figure_kind_is_drawn_from_the_fixtures(rendered, fixture_records):
    names = sorted(p.name for p in (rendered / "figures").glob("*.png"))
    archs = sorted({r["architecture"] for r in fixture_records if r["status"] == "ok"})
    for arch in archs:
        for stem in ("learning_curves", "bias_layers", "bias_curve", "fgsm", "rdm_grid"):
            assert f"{stem}_mnist_smoke_{arch}.png" in names, (stem, arch, names)
    assert "snr_ratio_initial_mnist_smoke_mlp.png" in names
    assert "feedback_angle_curve_mnist_smoke_mlp.png" in names  # feedback alignment has feedback weights
    assert "signal_angle_curve_mnist_smoke_mlp.png" in names
    for slot in ("hidden", "output"):
        assert f"rdm_similarity_{slot}.png" in names and f"projection_{slot}.png" in names
    for name in names:
        width, height = _png_size(rendered / "figures" / name)
        assert width > 200 and height > 150


def test_page_references_every_figure_and_holds_the_table(rendered, fixture_records):
    page = (rendered / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"figures/{p.name}" for p in (rendered / "figures").glob("*.png"))
    table = lb.html_table(lb.summarise(fixture_records))
    assert f'<div id="leaderboard-table">{table}</div>' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert report_mod.check_report(rendered, lb.html_table(lb.summarise(fixture_records))) == []


def test_representations_are_stored_as_data(rendered, fixture_records):
    data = json.loads((rendered / "representations.json").read_text())
    ok = {f"{r['task']}/{r['architecture']}/{r['rule']}" for r in fixture_records if r["status"] == "ok"}
    assert {p["key"] for p in data["pairings"]} == ok
    for slot in ("hidden", "output"):
        block = data["slots"][slot]
        assert len(block["mds"]["coordinates"]) == len(block["pairings"]) >= 2


def test_missing_metrics_are_skipped_with_a_note_not_drawn(tmp_path, fixture_records):
    stripped = copy.deepcopy(fixture_records)
    for r in stripped:
        for key in ("gradient_bias", "gradient_bias_curve", "update_variance", "feedback_angle_curve",
                    "signal_angle_curve", "fgsm_acc", "representations", "time_per_epoch_s"):
            r["metrics"].pop(key, None)
    notes = _build(stripped, tmp_path)
    names = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert names == {f"learning_curves_mnist_smoke_{a}.png" for a in {r["architecture"] for r in stripped if r["status"] == "ok"}}
    text = "\n".join(notes)
    for what in ("gradient bias per layer", "gradient bias over training", "fgsm accuracy vs perturbation", "RDM grids",
                 "accuracy against cost"):
        assert what in text
    page = (tmp_path / "index.html").read_text()
    assert "Not drawn" in page and "no record has `fgsm_acc`" in page


def test_strings_from_records_are_escaped(tmp_path, fixture_records):
    payload = '<img src=x onerror="alert(1)">'
    evil = [copy.deepcopy(r) for r in fixture_records if r["architecture"] == "kan"]
    for r in evil:
        if r["rule"] == "feedback_alignment":
            r["rule"] = payload
        if r["status"] == "unsupported":
            r["reason"] = "<script>alert(2)</script>"
    _build(evil, tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert payload not in page and str(escape(payload)) in page
    assert "<script>" not in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_embedded_images_make_a_single_file(tmp_path, rendered):
    page = tmp_path / "index.html"
    shutil.copytree(rendered, tmp_path, dirs_exist_ok=True)
    report_mod.embed_figures(page)
    sources = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert len(sources) == len(list((rendered / "figures").glob("*.png")))
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    shutil.rmtree(tmp_path / "figures")
    assert report_mod.check_report(tmp_path, lb.html_table(lb.summarise(records.read_records(FIXTURES)))) == []


def test_report_of_an_empty_folder_is_a_usage_error(tmp_path):
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2


def test_the_report_command_renders_a_folder_of_records(tmp_path, fixture_records):
    results = tmp_path / "results"
    results.mkdir()
    for r in fixture_records:
        if r["architecture"] == "mlp" and r["rule"] == "backprop":
            shutil.copy(FIXTURES / f"{r['run_id']}.json", results)
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out"), "--embed-images"]) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert lb.html_table(lb.summarise(records.read_records(results))) in page
    assert "data:image/png;base64," in page and 'src="figures/' not in page


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"headless Chromium not found ({', '.join(BROWSERS)}); {INSTALL_HINT}")


PROBE_SCRIPT = """<script>
window.addEventListener("load", function () {
  var widths = Array.prototype.map.call(document.images, function (im) { return im.naturalWidth; });
  var rows = document.querySelectorAll("table.leaderboard tbody tr").length;
  var out = document.createElement("pre");
  out.id = "browser-probe";
  out.textContent = JSON.stringify({widths: widths, rows: rows});
  document.body.appendChild(out);
});
</script>"""


def _open_in_browser(page: Path, tmp_path: Path) -> dict:
    probe = page.with_name("_browser_probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE_SCRIPT + "</body>"))
    command = [
        _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
        "--dump-dom", probe.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="browser-probe">(.*?)</pre>', done.stdout)
    assert match, f"no probe output; exit {done.returncode}; stderr: {done.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.mark.parametrize("embed", [False, True], ids=["figures-beside", "figures-embedded"])
def test_page_loads_in_headless_chromium(tmp_path, rendered, fixture_records, embed):
    out = tmp_path / "report"
    shutil.copytree(rendered, out)
    page = out / "index.html"
    if embed:
        report_mod.embed_figures(page)
        shutil.rmtree(out / "figures")
    expected_images = len(re.findall(r"<img ", page.read_text()))
    result = _open_in_browser(page, tmp_path)
    assert len(result["widths"]) == expected_images > 0
    assert all(w > 200 for w in result["widths"]), result["widths"]
    assert result["rows"] == len(lb.summarise(fixture_records))


def test_browser_sees_a_missing_figure(tmp_path, rendered):
    """The browser check itself can fail: a deleted figure loads with naturalWidth 0."""
    out = tmp_path / "report"
    shutil.copytree(rendered, out)
    sorted((out / "figures").glob("*.png"))[0].unlink()
    result = _open_in_browser(out / "index.html", tmp_path)
    assert result["widths"].count(0) == 1
