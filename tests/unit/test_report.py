"""Report: Markdown/HTML content, and the HTML rendered in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from r3f_utils.checker import check
from r3f_utils.cli import main
from r3f_utils.registry import DEFAULT_REGISTRY, load_registry
from r3f_utils.report import render_markdown, write_report
from r3f_utils.results import ResultRecord

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _records() -> list[ResultRecord]:
    def rec(row, **metrics):
        return ResultRecord(Path(f"/r/{row}/results.json"), row, "paper", 1, metrics)

    return [
        rec("table4.cnn_dailymail.bart_r3f", rouge1=43.5, rouge2=21.0, rougeLsum=41.2),
        rec("table1.r3f_r4f", forward_passes=2, backward_passes=1, cost_xfp=4),
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rows = load_registry(DEFAULT_REGISTRY, check_notebooks=False)
    result = check(rows, _records(), "paper")
    md, html = write_report(rows, result, tmp_path_factory.mktemp("report"))
    return rows, md, html


class _Table(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr" and dict(attrs).get("data-row"):
            self.rows.append(dict(attrs))
        if tag == "img":
            self.images.append(dict(attrs))


def test_markdown_has_one_line_per_registered_metric(report):
    rows, md, _ = report
    ids = tuple(f"| {r.id} |" for r in rows)
    lines = [ln for ln in md.read_text().splitlines() if ln.startswith(ids)]
    assert len(lines) == sum(len(r.metrics) for r in rows)  # one line per registered metric
    assert any(
        "table4.cnn_dailymail.bart_r3f" in ln and "rouge1" in ln and "43.50" in ln and "below" in ln
        for ln in lines
    )
    assert any("1 + S = 2" in ln for ln in lines)  # formula cells shown as printed
    assert (md.parent / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(report):
    rows, _, html = report
    parser = _Table()
    parser.feed(html.read_text())
    assert len(parser.rows) == sum(len(r.metrics) for r in rows)
    assert parser.images and all(i["src"].startswith("data:image/png;base64,") for i in parser.images)
    assert not re.search(r'(src|href)="(http|//)', html.read_text())


def test_empty_results_still_render(tmp_path):
    rows = load_registry(TOY, check_notebooks=False)
    text = render_markdown(rows, check(rows, [], "smoke"))
    assert text.count("| toy.") == 6


def test_cli_report(tmp_path, capsys):
    from r3f_utils.results import write_results

    write_results(
        tmp_path / "toy.single" / "seed-1",
        experiment="toy.single",
        profile="paper",
        seed=1,
        metrics={"accuracy": 50.2},
        parameters={},
    )
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY)]) == 0
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="chromium not installed (apt-get install -y --no-install-recommends chromium);"
    " this test always runs when CI is set",
)
def test_html_renders_in_headless_chromium(report, tmp_path):
    assert CHROMIUM, "CI is set but chromium is not installed"
    rows, _, html = report
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _Table()
    parser.feed(dom.stdout)
    assert len(parser.rows) == sum(len(r.metrics) for r in rows)  # one line per registered metric
    (image,) = [i for i in parser.images if i.get("id") == "plot"]
    width, height = (int(x) for x in image["data-rendered"].split("x"))  # set by onload: the PNG decoded
    assert width > 300 and height > 200
    shot = tmp_path / "shot.png"
    run = _chromium("--window-size=1200,900", f"--screenshot={shot}", html.as_uri())
    assert run.returncode == 0 and shot.stat().st_size > 10_000


# ---- the report a person reads: inferred profile, summary, paper layout, seeds, claims, run figures -------------


def _toy_runs(root: Path, seeds=(1, 2, 3)) -> None:
    from r3f_utils.results import write_results

    for seed in seeds:
        run = root / "toy.multi" / f"seed-{seed}"
        write_results(run, experiment="toy.multi", profile="smoke", seed=seed, metrics={"accuracy": 50.0 + seed},
                      parameters={}, extra={"figures": ["curve.png"]} if seed == 1 else None)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(root / "toy.multi" / "seed-1" / "curve.png")
    plt.close(fig)


def test_report_infers_the_profile_and_labels_the_reference(tmp_path, capsys):
    _toy_runs(tmp_path)
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY)]) == 0  # no --profile
    md = (tmp_path / "report.md").read_text()
    assert "Profile: **smoke**" in md and "Profile: **paper**" not in md
    assert "Compared with: the values pinned for the smoke profile" in md
    assert "- **Rows** (5): " in md and "**Claims**: none checked." in md
    # paper layout: tasks across, model · method down; paper value, the pin, reproduced with the seed spread
    assert "## Toy" in md and "| none R3F (best of 10 seeds) |" in md
    assert "paper 59.00 · smoke pin – → 53.00 [51.00–53.00, sd 1.00] (3/1 seeds)" in md  # max of 3 seeds
    assert "paper 54.50 · smoke pin – → 52.00 [51.00–53.00, sd 1.00]" in md  # median, same seeds


def test_report_plots_seed_distributions_and_embeds_run_figures(tmp_path):
    _toy_runs(tmp_path)
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report-seeds-toy.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "r" / "report.md").read_text()
    assert "![per-seed values of Toy](report-seeds-toy.png)" in md
    assert "![toy.multi seed 1: curve.png](../toy.multi/seed-1/curve.png)" in md  # relative to the report
    parser = _Table()
    parser.feed((tmp_path / "r" / "report.html").read_text())
    ids = {i.get("id") for i in parser.images}
    assert {"seeds-toy", "figure-0"} <= ids  # no pins to compare with: no overview plot, a sentence instead
    assert "No reproduced value has a reference to compare with yet" in (tmp_path / "r" / "report.html").read_text()
    assert all(i["src"].startswith("data:image/png;base64,") for i in parser.images)


def test_report_without_several_seeds_has_no_seed_plot(tmp_path):
    _toy_runs(tmp_path, seeds=(1,))
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY)]) == 0
    assert not list(tmp_path.glob("report-seeds*.png"))


def test_report_with_mixed_profiles_asks_for_one(tmp_path, capsys):
    from r3f_utils.results import write_results

    _toy_runs(tmp_path, seeds=(1,))
    write_results(tmp_path / "p" / "seed-1", experiment="toy.single", profile="paper", seed=1,
                  metrics={"accuracy": 1.0}, parameters={})
    assert main(["report", "--results", str(tmp_path), "--registry", str(TOY)]) == 2
    assert "hold profiles paper, smoke: pass --profile" in capsys.readouterr().err


def test_report_lists_claims_with_verdict_and_operands(tmp_path):
    from r3f_utils.checker import ClaimVerdict
    from r3f_utils.report import render_html

    rows = load_registry(TOY, check_notebooks=False)
    result = check(rows, [], "smoke")
    result.claims = [ClaimVerdict("fig1.toy.faster", "R3F is faster than SMART", "holds", False,
                                  {"toy.multi:wall_time": 10.0}, {"toy.single:wall_time": 20.0}, "<",
                                  expected="holds")]
    md = render_markdown(rows, result)
    assert "**Claims**: 1 of 1 holding (1 holds)." in md
    assert ("| fig1.toy.faster | R3F is faster than SMART | holds (pinned: holds) | "
            "toy.multi:wall_time = 10.00  <  toy.single:wall_time = 20.00 |") in md
    assert 'data-claim="fig1.toy.faster"' in render_html(rows, result)
