"""The report a first-time user reads (issue 19 A): the smoke/cpu banner, pin cells not dressed as reproduced
paper numbers, no degenerate scatter, wide tables inside the page, metric names in words, each per-seed plot
beside its table, a jinja2 template, the figures drawn once, and the model-index export."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from r3f_utils import report as report_module
from r3f_utils.checker import check
from r3f_utils.cli import main
from r3f_utils.labels import metric_label, task_label
from r3f_utils.registry import DEFAULT_REGISTRY, load_registry
from r3f_utils.results import ResultRecord, write_results

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _smoke_batch(root: Path, value: float = 50.0) -> Path:
    """A one-experiment smoke batch of the toy registry whose value equals the pin (toy.single: 50.0)."""
    root.mkdir(parents=True)
    (root / "batch.json").write_text(json.dumps({"schema_version": 1, "profile": "smoke",
                                                 "experiments": ["toy.single"], "seeds": None, "overrides": {}}))
    write_results(root / "toy.single" / "seed-1", experiment="toy.single", profile="smoke", seed=1,
                  metrics={"accuracy": value}, parameters={})
    return root


class _Page(HTMLParser):
    """The body's elements in order (tag, attributes), and the text of the <style> block."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _body_after_h1(page: _Page) -> list[tuple[str, dict]]:
    tags = [t for t, _ in page.elements]
    return page.elements[tags.index("h1") + 1:]


# ---- banner and colours ----------------------------------------------------------------------------------------


def test_smoke_report_opens_with_the_banner(tmp_path):
    batch = _smoke_batch(tmp_path / "b")
    assert main(["report", "--results", str(batch), "--registry", str(TOY)]) == 0
    md = (batch / "report.md").read_text().splitlines()
    assert md[0] == "# R3F/R4F reproduction report"
    assert md[2].startswith("> **Smoke profile: regression pins, not evidence about the paper.**")
    assert "tiny" in md[2] and "nothing for or against the paper" in md[2]
    first_tag, first_attrs = _body_after_h1(_page((batch / "report.html").read_text()))[0]
    assert first_tag == "div" and first_attrs.get("id") == "banner"


def test_cpu_report_has_a_banner_and_paper_report_has_none():
    rows = load_registry(TOY, check_notebooks=False)
    cpu = report_module.render_html(rows, check(rows, [], "cpu"))
    assert 'id="banner"' in cpu and "CPU profile" in cpu and "not evidence about the paper" in cpu
    paper = report_module.render_html(rows, check(rows, [], "paper"))
    assert 'id="banner"' not in paper


def test_smoke_cells_are_not_coloured_like_reproduced_paper_numbers(tmp_path):
    batch = _smoke_batch(tmp_path / "b")
    assert main(["report", "--results", str(batch), "--registry", str(TOY)]) == 0
    page = _page((batch / "report.html").read_text())
    cells = [a for t, a in page.elements if t == "td" and a.get("data-verdict")]
    assert cells and all("pin" in a["class"].split() for a in cells)
    green = report_module._COLORS["reproduced"]
    assert green not in page.style  # no reproduced-green anywhere on a page of pins
    assert "smoke pin: reproduced" in (batch / "report.html").read_text()
    assert "_pin: reproduced_" in (batch / "report.md").read_text() and "**reproduced**" not in (
        batch / "report.md").read_text()
    # the paper profile keeps its colours
    rows = load_registry(TOY, check_notebooks=False)
    rec = ResultRecord(Path("/r/toy.single/results.json"), "toy.single", "paper", 1, {"accuracy": 50.0})
    paper = _page(report_module.render_html(rows, check(rows, [rec], "paper"), records=[rec]))
    assert green in paper.style
    assert not any("pin" in a.get("class", "").split() for t, a in paper.elements if t == "td")


# ---- the overview scatter ---------------------------------------------------------------------------------------


def test_degenerate_scatter_is_skipped_with_a_sentence(tmp_path):
    batch = _smoke_batch(tmp_path / "b")  # one point: pin 50 = reproduced 50
    assert main(["report", "--results", str(batch), "--registry", str(TOY)]) == 0
    assert not (batch / "report.png").exists()
    sentence = "No overview plot: one value is compared (reference 50.00, reproduced 50.00)"
    assert sentence in (batch / "report.md").read_text()
    html = (batch / "report.html").read_text()
    assert sentence in html and 'id="plot"' not in html


def test_scatter_of_nearly_equal_values_has_plain_axes(monkeypatch):
    """Values 100.0 and 100.00001 used to give offset axes ("+1e2") with overlapping tick labels."""
    rows = load_registry(TOY, check_notebooks=False)
    records = [ResultRecord(Path(f"/r/{r}/results.json"), r, "paper", 1, {"accuracy": v})
               for r, v in (("toy.single", 100.0), ("toy.fails", 100.00001))]
    result = check(rows, records, "paper")
    assert report_module.degenerate_plot_reason(result) == ""
    figures = []
    real_png = report_module._png
    monkeypatch.setattr(report_module, "_png", lambda fig: (figures.append(fig), real_png(fig))[1])
    png = report_module.plot_png(result)
    assert png and png[:4] == b"\x89PNG"
    ax = figures[0].axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        assert axis.get_major_formatter().get_offset() == ""
        ticks = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
        assert 2 <= len(ticks) <= 8 and len(set(ticks)) == len(ticks)  # distinct, few enough to read
    low, high = ax.get_xlim()
    assert high - low >= 1.0  # a window of at least 1% of the values, not 1e-5


# ---- layout and words -----------------------------------------------------------------------------------------


def test_metric_names_read_as_words():
    assert metric_label("accuracy_matched", "mnli") == "MNLI matched accuracy"
    assert metric_label("accuracy", "sst2") == "SST-2 accuracy"
    assert metric_label("mcc", "cola") == "CoLA Matthews correlation"
    assert metric_label("accuracy_fr", "xnli") == "French accuracy"
    assert metric_label("rougeLsum", "cnn_dailymail") == "CNN/DailyMail ROUGE-Lsum"
    assert metric_label("probe_c2_qnli", "sst2") == "QNLI probe, cycle 2"
    assert task_label("stsb") == "STS-B"
    rows = load_registry(DEFAULT_REGISTRY, check_notebooks=False)
    md = report_module.render_markdown(rows, check(rows, [], "paper"))
    header = next(ln for ln in md.splitlines() if ln.startswith("| | MNLI matched accuracy"))
    assert "accuracy_matched" not in header and "QQP accuracy" in header
    assert "## Figure 5" in md and "## Table fig5" not in md


def test_every_paper_table_scrolls_inside_its_box():
    rows = load_registry(DEFAULT_REGISTRY, check_notebooks=False)
    page = _page(report_module.render_html(rows, check(rows, [], "paper")))
    for i, (tag, attrs) in enumerate(page.elements):
        if tag == "table":
            assert page.elements[i - 1] == ("div", {"class": "wide"}), attrs
    assert re.search(r"\.wide\s*\{[^}]*overflow-x:\s*auto", page.style)


def test_per_seed_plot_sits_beside_its_table(tmp_path):
    for seed in (1, 2, 3):
        write_results(tmp_path / "toy.multi" / f"seed-{seed}", experiment="toy.multi", profile="paper", seed=seed,
                      metrics={"accuracy": 50.0 + seed}, parameters={})
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY)]) == 0
    page = _page((tmp_path / "report.html").read_text())
    blocks = [i for i, (t, a) in enumerate(page.elements) if a.get("class") == "table-block"]
    assert len(blocks) == 1
    inside = page.elements[blocks[0]:]
    tags = [(t, a.get("id", "")) for t, a in inside]
    assert tags.index(("table", "")) < tags.index(("img", "seeds-toy"))
    md = (tmp_path / "report.md").read_text()
    table_at, plot_at = md.index("## Toy"), md.index("![per-seed values of Toy](report-seeds-toy.png)")
    assert table_at < plot_at < md.index("## Every registered number")


def test_html_comes_from_the_template_and_the_figures_are_drawn_once(tmp_path, monkeypatch):
    template = Path(report_module.__file__).parent / "templates" / "report.html.j2"
    assert template.is_file()
    source = inspect.getsource(report_module)
    assert "<table" not in source and "<td" not in source  # no HTML built with f-strings
    calls = {"draw_figures": 0, "plot_png": 0}
    for name in calls:
        real = getattr(report_module, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(report_module, name, counted)
    batch = _smoke_batch(tmp_path / "b", value=50.2)
    assert main(["report", "--results", str(batch), "--registry", str(TOY)]) == 0
    assert calls == {"draw_figures": 1, "plot_png": 1}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_wide_tables_do_not_widen_the_page_in_chromium(tmp_path):
    rows = load_registry(DEFAULT_REGISTRY, check_notebooks=False)  # Table 3: 16 columns, Figure 5: 13
    html = tmp_path / "report.html"
    html.write_text(report_module.render_html(rows, check(rows, [], "paper")))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              f"--user-data-dir={profile}", "--window-size=1000,800", "--virtual-time-budget=5000",
                              "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-overflow-x="false"' in dom.stdout


# ---- model-index export -----------------------------------------------------------------------------------------


def test_report_format_model_index(tmp_path, capsys):
    write_results(tmp_path / "a" / "seed-1", experiment="table2a.rte.roberta_large_r3f", profile="paper", seed=1,
                  metrics={"accuracy": 88.0}, parameters={})  # a row id: its experiment is table2.rte.roberta_large_r3f
    write_results(tmp_path / "b" / "seed-1", experiment="table4.cnn_dailymail.bart_r3f", profile="paper", seed=1,
                  metrics={"rouge1": 44.0, "rouge2": 21.0, "rougeLsum": 41.0}, parameters={})
    write_results(tmp_path / "c" / "seed-1", experiment="table1.r3f_r4f", profile="paper", seed=1,
                  metrics={"forward_passes": 2, "backward_passes": 1, "cost_xfp": 4}, parameters={})
    assert main(["report", "--results", str(tmp_path), "--format", "model-index", "--rows", "table2a.rte.*",
                 "table4.cnn_dailymail.bart_r3f", "table1.r3f_r4f"]) == 0
    assert not (tmp_path / "report.html").exists()
    data = yaml.safe_load((tmp_path / "model-index.yaml").read_text())
    assert data == json.loads((tmp_path / "model-index.json").read_text())
    entries = {e["name"]: e for e in data["model-index"]}
    assert set(entries) == {"roberta-large R3F", "bart-large R3F"}  # Table 1's compute counts are no benchmark
    (rte,) = [r for r in entries["roberta-large R3F"]["results"] if r["dataset"]["config"] == "rte"]
    assert rte["task"]["type"] == "text-classification"
    assert rte["dataset"]["type"] == "nyu-mll/glue" and rte["dataset"]["name"] == "GLUE RTE"
    (metric,) = rte["metrics"]
    assert metric["type"] == "accuracy" and metric["value"] == 88.0 and metric["verified"] is False
    assert metric["name"] == "RTE accuracy (best of 10 seeds)"
    assert metric["args"]["seeds"] == 1 and metric["args"]["seeds_needed"] == 10 and metric["args"]["paper"] == next(
        r.metrics["accuracy"] for r in load_registry(DEFAULT_REGISTRY, check_notebooks=False)
        if r.id == "table2a.rte.roberta_large_r3f")
    (cnn,) = entries["bart-large R3F"]["results"]
    assert cnn["task"]["type"] == "summarization"
    assert {(m["type"], m["name"], m["value"]) for m in cnn["metrics"]} >= {
        ("rouge", "CNN/DailyMail ROUGE-1 (1 seed)", 44.0)}


def test_several_coinciding_points_are_degenerate_too():
    rows = load_registry(TOY, check_notebooks=False)  # toy.single and toy.fails: paper value 50.0 each
    records = [ResultRecord(Path(f"/r/{r}/results.json"), r, "paper", 1, {"accuracy": 50.0})
               for r in ("toy.single", "toy.fails")]
    result = check(rows, records, "paper")
    reason = report_module.degenerate_plot_reason(result)
    assert reason.startswith("No overview plot: all 2 compared values have the same reference (50.00)")
    assert report_module.plot_png(result) is None
