"""The reproduction report (``report.md`` + a self-contained ``report.html``), written for a person to read.

Order: for the smoke and cpu profiles a banner (their numbers are regression pins of tiny/CPU models, not evidence
about the paper), a summary (rows reproduced / above / below / missing, claims holding, what is compared
against), an overview plot, the paper's tables laid out as the paper prints them (tasks across, model and method
down; each cell the reproduced value with its seed spread and the reference value), each followed by the
per-seed plot of its rows, the claims, every figure a run lists in its ``results.json`` (``extra["figures"]``,
file names relative to its run folder), and last the full list, one line per registered metric.

The profile decides the reference: ``paper`` compares with the paper's numbers; ``smoke`` (and ``cpu``)
compare with the values pinned in the registry for that profile, which are not claims about the paper (their
cells are drawn in neutral colours, not as reproduced paper numbers). The HTML is rendered from the jinja2
template ``r3f_utils/templates/report.html.j2``, embeds every image as base64 and needs nothing else. The figures
are drawn once (:func:`draw_figures`) for both files. Every file is written atomically. No torch/transformers
import; matplotlib is imported only to draw.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, atomic_write_text
from .checker import CheckResult, Verdict
from .labels import metric_label, row_label, task_of
from .registry import RegistryRow
from .results import ResultRecord

__all__ = [
    "ReportFigures",
    "banner",
    "degenerate_plot_reason",
    "draw_figures",
    "plot_png",
    "reference_label",
    "render_html",
    "render_markdown",
    "seed_values",
    "seeds_png",
    "summarize",
    "write_report",
]

_COLUMNS = ("Row", "Task", "Dataset", "Model", "Method", "Metric", "Paper", "Compared with", "Reproduced",
            "Delta", "Verdict")
_COLORS = {
    "reproduced": "#2e7d32",
    "above": "#1565c0",
    "below": "#c62828",
    "missing": "#757575",
    "invalid": "#6a1b9a",
    "measured": "#00838f",
    "holds": "#2e7d32",
    "fails": "#c62828",
}
# smoke/cpu: a pin matched is not a reproduced paper number: neutral, and a drift from the pin stands out
_PIN_COLORS = {"reproduced": "#455a64", "measured": "#455a64", "holds": "#455a64", "fails": "#455a64",
               "above": "#e65100", "below": "#e65100", "missing": "#757575", "invalid": "#6a1b9a"}
# a row's verdict is its worst metric's, in this order
_ROW_ORDER = ("invalid", "below", "above", "missing", "measured", "reproduced")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
                ".gif": "image/gif"}
_BANNERS = {
    "smoke": ("Smoke profile: regression pins, not evidence about the paper.",
              "Every number below comes from a tiny randomly initialised model trained for seconds on CPU with "
              "fixture data. It is compared with the value pinned for the smoke profile in the registry, so "
              "'reproduced' means 'the code still computes what it computed when the pin was set'. It says "
              "nothing for or against the paper's results; the paper's values are shown for orientation only. "
              "Run the paper profile for that."),
    "cpu": ("CPU profile: regression pins of a small pretrained model, not evidence about the paper.",
            "Every number below comes from a small pretrained encoder (MiniLM) fine-tuned briefly on CPU. It is "
            "compared with the value pinned for the cpu profile in the registry, so 'reproduced' means 'the "
            "code still computes what it computed when the pin was set'. It is not a reproduction of the "
            "paper's numbers; the paper's values are shown for orientation only."),
}


def reference_label(profile: str) -> str:
    """What the checker compared the reproduced values with, in words."""
    if profile == "paper":
        return "the paper's printed values"
    return f"the values pinned for the {profile} profile in the registry (regression pins, not the paper's numbers)"


def banner(profile: str) -> tuple[str, str] | None:
    """(headline, text) of the banner a smoke/cpu report opens with; None for the paper profile."""
    return _BANNERS.get(profile)


def _short_reference(profile: str) -> str:
    return "paper" if profile == "paper" else f"{profile} pin"


# ---- data ------------------------------------------------------------------------------------------------


def seed_values(
    rows: Sequence[RegistryRow], records: Iterable[ResultRecord], profile: str
) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(row id, metric) -> [(seed, value)], from the records of ``profile`` (the latest file per seed)."""
    to_experiment = {r.experiment: r.experiment for r in rows} | {r.id: r.experiment for r in rows}
    latest: dict[str, dict[int, ResultRecord]] = defaultdict(dict)
    for rec in records:
        experiment = to_experiment.get(rec.experiment)
        if rec.profile != profile or experiment is None:
            continue
        previous = latest[experiment].get(rec.seed)
        if previous is None or (rec.finished_at or "") >= (previous.finished_at or ""):
            latest[experiment][rec.seed] = rec
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in rows:
        runs = latest.get(row.experiment, {})
        for metric in row.metrics:
            values = [(s, runs[s].metrics[metric]) for s in sorted(runs) if metric in runs[s].metrics]
            if values:
                out[(row.id, metric)] = values
    return out


def _row_verdicts(result: CheckResult) -> dict[str, str]:
    by_row: dict[str, list[str]] = defaultdict(list)
    for v in result.verdicts:
        by_row[v.row].append(v.verdict)
    return {row: min(names, key=lambda n: _ROW_ORDER.index(n) if n in _ROW_ORDER else 0)
            for row, names in by_row.items()}


def _claims(result: CheckResult) -> list[Any]:
    return list(getattr(result, "claims", None) or [])


def summarize(result: CheckResult) -> dict[str, Any]:
    """Counts for the summary: rows and numbers per verdict, claims per verdict."""
    rows: dict[str, int] = defaultdict(int)
    for verdict in _row_verdicts(result).values():
        rows[verdict] += 1
    numbers: dict[str, int] = defaultdict(int)
    for v in result.verdicts:
        numbers[v.verdict] += 1
    claims: dict[str, int] = defaultdict(int)
    for c in _claims(result):
        claims[str(getattr(c, "verdict", "?"))] += 1
    return {"rows": dict(rows), "numbers": dict(numbers), "claims": dict(claims),
            "n_rows": sum(rows.values()), "n_numbers": len(result.verdicts), "n_claims": sum(claims.values())}


def _counts(counts: dict[str, int], order: Sequence[str]) -> str:
    names = [n for n in order if n in counts] + sorted(n for n in counts if n not in order)
    return ", ".join(f"{counts[n]} {n}" for n in names) or "none"


def _summary_lines(result: CheckResult) -> list[str]:
    s = summarize(result)
    order = ("reproduced", "above", "below", "missing", "measured", "invalid")
    lines = [
        f"**Rows** ({s['n_rows']}): {_counts(s['rows'], order)}.",
        f"**Numbers** ({s['n_numbers']}): {_counts(s['numbers'], order)}.",
    ]
    if s["n_claims"]:
        held = s["claims"].get("holds", 0)
        claims = _counts(s["claims"], ("holds", "fails", "degenerate", "missing", "invalid"))
        lines.append(f"**Claims**: {held} of {s['n_claims']} holding ({claims}).")
    else:
        lines.append("**Claims**: none checked.")
    return lines


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"


def _spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f"[{_fmt(min(values))}–{_fmt(max(values))}, sd {statistics.stdev(values):.2f}]"


# ---- paper-style tables ----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One cell of a paper-style table."""

    reproduced: str = ""  # the aggregate, or "" when not run
    spread: str = ""  # min–max and sd over seeds
    reference: str = ""  # "paper 88.50" (+ " · smoke pin 50.00")
    seeds: str = ""  # "3/10 seeds"
    verdict: Verdict | None = None

    @property
    def empty(self) -> bool:
        return not self.reference

    def text(self) -> str:
        """The cell in one line (Markdown)."""
        if self.empty:
            return ""
        text = self.reference
        if self.reproduced:
            text += f" → {self.reproduced}" + (f" {self.spread}" if self.spread else "") + f" ({self.seeds})"
        return text


@dataclass
class PaperTable:
    """A registry table laid out as the paper prints it, with the per-seed plot of its rows."""

    key: str
    title: str
    columns: list[str]
    body: list[tuple[str, list[Cell]]]
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.key)


def table_title(table: str) -> str:
    """``2a`` -> ``Table 2a``, ``fig5`` -> ``Figure 5``, ``released-code`` -> ``Released code``."""
    if table.startswith("fig") and table[3:].isdigit():
        return f"Figure {table[3:]}"
    if table[:1].isdigit():
        return f"Table {table}"
    return table.replace("-", " ").capitalize()


def _paper_tables(
    rows: Sequence[RegistryRow], result: CheckResult, seeds: dict[tuple[str, str], list[tuple[int, float]]]
) -> list[PaperTable]:
    """Per registry table: columns (task and metric in words), one line per model and method."""
    verdicts = {(v.row, v.metric): v for v in result.verdicts}
    ref = _short_reference(result.profile)
    tables: dict[str, list[RegistryRow]] = {}
    for row in rows:
        tables.setdefault(row.table, []).append(row)
    out = []
    for table, members in tables.items():
        columns: list[str] = []
        cells: dict[str, dict[str, Cell]] = {}
        several_aggregations = len({r.aggregation for r in members}) > 1
        table_verdicts = []
        for row in members:
            label = row_label(row, with_aggregation=several_aggregations)
            for metric in row.metrics:
                column = metric_label(metric, task_of(row))
                if column not in columns:
                    columns.append(column)
                v = verdicts.get((row.id, metric))
                paper = row.printed.get(metric) or _fmt(row.metrics[metric])
                cell = Cell(reference="paper: figure only" if paper == "–" else f"paper {paper}", verdict=v)
                if v is not None and result.profile != "paper":
                    cell.reference += f" · {ref} {_fmt(v.expected)}"
                values = [x for _, x in seeds.get((row.id, metric), [])]
                if v is not None and v.reproduced is not None:
                    cell.reproduced, cell.spread = _fmt(v.reproduced), _spread(values)
                    cell.seeds = f"{v.n_seeds}/{v.seeds_needed} seeds"
                if v is not None:
                    table_verdicts.append(v)
                cells.setdefault(label, {})[column] = cell
        body = [(label, [by_col.get(c, Cell()) for c in columns]) for label, by_col in cells.items()]
        out.append(PaperTable(table, table_title(table), columns, body, table_verdicts))
    return out


# ---- plots -----------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return buffer.getvalue()


def _scatter_points(result: CheckResult) -> list[tuple[float, float, Verdict]]:
    return [(v.expected, v.reproduced, v) for v in result.verdicts
            if v.reproduced is not None and v.expected is not None and math.isfinite(v.reproduced)]


def degenerate_plot_reason(result: CheckResult) -> str:
    """Why the reference-vs-reproduced scatter would say nothing ("" when it is worth drawing): no values, or
    every point at the same place."""
    points = _scatter_points(result)
    if not points:
        return "No reproduced value has a reference to compare with yet, so there is no overview plot."
    distinct = {(round(x, 6), round(y, 6)) for x, y, _ in points}
    if len(distinct) == 1:
        x, y, _ = points[0]
        same = "equals it" if abs(x - y) < 1e-9 else f"is {_fmt(y)}"
        if len(points) == 1:
            return (f"No overview plot: one value is compared (reference {_fmt(x)}, reproduced {_fmt(y)}); the "
                    "scatter would be a single point. See the tables.")
        return (f"No overview plot: all {len(points)} compared values have the same reference ({_fmt(x)}) and "
                f"the same reproduced value, which {same}; the scatter would be a single point. See the tables.")
    return ""


def plot_png(result: CheckResult) -> bytes | None:
    """Scatter of the reference value (x) against the reproduced value (y), one point per row and metric, on
    plain axes (no offset); None when :func:`degenerate_plot_reason` says the plot would be degenerate."""
    if degenerate_plot_reason(result):
        return None
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    points = _scatter_points(result)
    pin = result.profile != "paper"
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    for name in _COLORS:
        sel = [(x, y) for x, y, v in points if v.verdict == name]
        if sel:
            color = (_PIN_COLORS if pin else _COLORS).get(name, "#333333")
            ax.scatter(*zip(*sel, strict=True), s=28, color=color, label=f"{name} ({len(sel)})", zorder=3)
    values = [c for x, y, _ in points for c in (x, y)]
    lo, hi = min(values), max(values)
    # a window of at least 1% of the values' size: nearly equal points do not get axes of 1e-6 with an offset
    pad = max(0.05 * (hi - lo), 0.01 * max(abs(lo), abs(hi)), 1e-3)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9e9e9e", lw=1, ls="--", label="y = x")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=6))
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)
    if len(points) <= 12:  # one label per place: points that coincide share it instead of overprinting
        places: dict[tuple[float, float], list[str]] = {}
        for x, y, v in points:
            places.setdefault((round(x, 6), round(y, 6)), []).append(f"{v.row}:{v.metric}")
        for (x, y), names in places.items():
            ax.annotate("\n".join(names), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.legend(loc="best", fontsize=8)
    ref = _short_reference(result.profile)
    ax.set_xlabel(f"{ref} value")
    ax.set_ylabel("reproduced value")
    ax.set_title(f"{ref} vs reproduced ({result.profile} profile)")
    ax.grid(alpha=0.3)
    return _png(fig)


def seeds_png(result: CheckResult, seeds: dict[tuple[str, str], list[tuple[int, float]]],
              verdicts: Sequence[Verdict] | None = None, rows: Sequence[RegistryRow] = ()) -> bytes | None:
    """One strip per row and metric with several seeds (of ``verdicts``, default all): each seed a dot, the
    aggregate a bar, the reference a diamond. None when no row has several seeds."""
    chosen = result.verdicts if verdicts is None else verdicts
    strips = [(v, [x for _, x in seeds[(v.row, v.metric)]]) for v in chosen
              if len(seeds.get((v.row, v.metric), [])) >= 2]
    if not strips:
        return None
    by_id = {r.id: r for r in rows}

    def label(v: Verdict) -> str:
        row = by_id.get(v.row)
        return f"{v.row}:{v.metric}" if row is None else f"{row_label(row)} · {metric_label(v.metric)}"

    plt = _pyplot()
    colors = _PIN_COLORS if result.profile != "paper" else _COLORS
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(strips) + 1.4), dpi=100)
    for i, (v, values) in enumerate(strips):
        color = colors.get(v.verdict, "#333333")
        ax.scatter(values, [i] * len(values), s=18, color=color, alpha=0.7, zorder=3)
        if v.reproduced is not None:
            ax.plot([v.reproduced] * 2, [i - 0.3, i + 0.3], color=color, lw=2)
        if v.expected is not None:
            ax.scatter([v.expected], [i], marker="D", s=36, facecolor="none", edgecolor="black", zorder=4)
    ax.set_yticks(range(len(strips)), [f"{label(v)} ({len(x)})" for v, x in strips], fontsize=7)
    ax.invert_yaxis()
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.set_xlabel(f"value per seed (dots), aggregate (bar), {_short_reference(result.profile)} (diamond)")
    ax.set_title(f"Per-seed values ({result.profile} profile)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


# ---- run figures -----------------------------------------------------------------------------------------


def run_figures(records: Iterable[ResultRecord]) -> list[tuple[ResultRecord, Path, str]]:
    """(record, file, problem) for every ``extra["figures"]`` entry; problem is "" when the file exists."""
    out = []
    for rec in records:
        figures = rec.extra.get("figures") or []
        if isinstance(figures, str):
            figures = [figures]
        for name in figures:
            path = rec.path.parent / str(name)
            problem = "" if path.is_file() else f"listed in {rec.path} but missing"
            out.append((rec, path, problem))
    return out


@dataclass
class ReportFigures:
    """Every image of a report, drawn once (:func:`draw_figures`) for both report.md and report.html."""

    overview: bytes | None = None
    overview_note: str = ""  # why there is no overview plot
    seeds: dict[str, bytes] = field(default_factory=dict)  # table key -> per-seed plot of its rows
    runs: list[tuple[str, Path]] = field(default_factory=list)  # (caption, file) of the runs' own figures

    def seeds_file(self, table: str) -> str:
        """The per-seed plot's file name next to report.md."""
        return "report-seeds-" + re.sub(r"[^A-Za-z0-9_-]+", "-", table) + ".png"


def draw_figures(rows: Sequence[RegistryRow], result: CheckResult, records: Sequence[ResultRecord] = ()
                 ) -> ReportFigures:
    """Draw the overview scatter (or say why not) and one per-seed plot per table; collect the runs' figures
    (a listed figure that is missing becomes a warning of ``result``)."""
    seeds = seed_values(rows, records, result.profile)
    figures = ReportFigures(plot_png(result), degenerate_plot_reason(result))
    for table in _paper_tables(rows, result, seeds):
        png = seeds_png(result, seeds, table.verdicts, rows)
        if png:
            figures.seeds[table.key] = png
    for rec, path, problem in run_figures(records):
        if problem:
            result.warnings.append(f"figure {path.name} of {rec.experiment} seed {rec.seed}: {problem}")
        else:
            figures.runs.append((f"{rec.experiment} seed {rec.seed}: {path.name}", path))
    return figures


# ---- rendering -------------------------------------------------------------------------------------------


def _detail_cells(row: RegistryRow, v: Verdict) -> list[str]:
    ref = row.dataset
    if ref is None:  # Table 1: counted on random batches
        dataset = "none (random batches)"
    else:
        config = ", ".join(ref.config) if isinstance(ref.config, tuple) else ref.config
        dataset = ref.hub_id + (f" ({config})" if config else "")
    paper = row.printed.get(v.metric, _fmt(v.paper) if v.paper is not None else "–")
    if row.printed.get(v.metric) and v.paper is not None:
        paper = f"{paper} = {v.paper:g}"
    reproduced = _fmt(v.reproduced) if v.reproduced is not None else "-"
    if v.reproduced is not None and v.n_seeds < v.seeds_needed:
        reproduced += f" ({v.n_seeds}/{v.seeds_needed} seeds)"
    delta = "-" if v.delta is None else f"{v.delta:+.2f}"
    return [row.id, row.task, dataset, row.model, row.method, v.metric, paper, _fmt(v.expected), reproduced,
            delta, v.verdict]


def _claim_fields(claim: Any) -> tuple[str, str, str, str]:
    """(id, statement, verdict, operands) of a ``checker.ClaimVerdict``."""

    def side(values: dict[str, float | None]) -> str:
        return ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items())

    verdict = getattr(claim, "label", claim.verdict) + (f" (pinned: {claim.expected})" if claim.expected else "")
    evidence = getattr(claim, "evidence", "")
    if evidence:  # the effect and its 95% interval (paper), or "not evidence about the paper" (smoke/cpu)
        verdict += f" [{evidence}]"
    if claim.reason:
        verdict += f": {claim.reason}"
    operands = f"{side(claim.left)}  {claim.relation}  {side(claim.right)}"
    return claim.claim, claim.statement, verdict, operands


def render_markdown(
    rows: Sequence[RegistryRow],
    result: CheckResult,
    *,
    plot_file: str | None = None,
    figures: ReportFigures | None = None,
    records: Sequence[ResultRecord] = (),
    run_figure_files: Sequence[tuple[str, str]] = (),
) -> str:
    """The report as Markdown. ``figures``: the drawn images (their files lie next to the report);
    ``run_figure_files``: (caption, path relative to the report) of the runs' figures."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = seed_values(rows, records, result.profile)
    pin = result.profile != "paper"
    out = ["# R3F/R4F reproduction report", ""]
    note = banner(result.profile)
    if note:
        out += [f"> **{note[0]}** {note[1]}", ""]
    out += [
        f"Profile: **{result.profile}**. Compared with: {reference_label(result.profile)}. Generated {stamp}.",
        "",
        *(f"- {line}" for line in _summary_lines(result)),
        "",
    ]
    if plot_file:
        out += [f"![{_short_reference(result.profile)} vs reproduced]({plot_file})", ""]
    elif figures is not None and figures.overview_note:
        out += [figures.overview_note, ""]
    for table in _paper_tables(rows, result, seeds):
        out += [f"## {table.title}", "", "| | " + " | ".join(table.columns) + " |",
                "|---|" + "---|" * len(table.columns)]
        for label, cells in table.body:
            texts = []
            for cell in cells:
                text = cell.text()
                if text and cell.verdict is not None:
                    text += f" _pin: {cell.verdict.verdict}_" if pin else f" **{cell.verdict.verdict}**"
                texts.append(text)
            out.append(f"| {label} | " + " | ".join(x.replace("|", "\\|") for x in texts) + " |")
        out.append("")
        if figures is not None and table.key in figures.seeds:
            out += [f"![per-seed values of {table.title}]({figures.seeds_file(table.key)})", ""]
    claims = _claims(result)
    if claims:
        out += ["## Claims", "", "| Claim | Statement | Verdict | Operands |", "|---|---|---|---|"]
        for claim in claims:
            out.append("| " + " | ".join(x.replace("|", "\\|") for x in _claim_fields(claim)) + " |")
        out.append("")
    if run_figure_files:
        out += ["## Figures of the runs", ""]
        out += [f"![{caption}]({path})\n\n{caption}\n" for caption, path in run_figure_files]
    out += ["## Every registered number", "", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    by_id = {r.id: r for r in rows}
    for v in result.verdicts:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in _detail_cells(by_id[v.row], v)) + " |")
    if result.warnings:
        out += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    return "\n".join(out) + "\n"


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _template(name: str):
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(name)


def render_html(
    rows: Sequence[RegistryRow],
    result: CheckResult,
    figures: ReportFigures | None = None,
    *,
    records: Sequence[ResultRecord] = (),
) -> str:
    """A self-contained HTML page (every image embedded), rendered from ``templates/report.html.j2``."""
    figures = figures if figures is not None else ReportFigures(overview_note=degenerate_plot_reason(result))
    seeds = seed_values(rows, records, result.profile)
    pin = result.profile != "paper"
    by_id = {r.id: r for r in rows}
    tables = [{"title": t.title, "slug": t.slug, "columns": t.columns, "body": t.body,
               "seeds": _data_uri(figures.seeds[t.key]) if t.key in figures.seeds else None}
              for t in _paper_tables(rows, result, seeds)]
    context = {
        "profile": result.profile,
        "pin": pin,
        "banner": banner(result.profile),
        "reference": reference_label(result.profile),
        "short_reference": _short_reference(result.profile),
        "stamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": [line.replace("**", "") for line in _summary_lines(result)],
        "overview": _data_uri(figures.overview) if figures.overview else None,
        "overview_note": figures.overview_note,
        "tables": tables,
        "claims": [(*_claim_fields(c), c.verdict, bool(getattr(c, "failed", False))) for c in _claims(result)],
        "run_figures": [(caption, _data_uri(path.read_bytes(), _IMAGE_TYPES.get(path.suffix.lower(),
                                                                                 "application/octet-stream")))
                        for caption, path in figures.runs],
        "columns": _COLUMNS,
        "details": [(v, _detail_cells(by_id[v.row], v)) for v in result.verdicts],
        "warnings": result.warnings,
        "colors": _PIN_COLORS if pin else _COLORS,
    }
    return _template("report.html.j2").render(**context)


def write_report(
    rows: Sequence[RegistryRow],
    result: CheckResult,
    out_dir: str | Path,
    *,
    records: Sequence[ResultRecord] = (),
) -> tuple[Path, Path]:
    """Write ``report.md`` (+ its PNGs) and ``report.html`` into ``out_dir`` atomically; return (md, html).

    Raises ``atomic.OutputError`` (naming the file and the fix) when the folder cannot be written; no partial
    file is left behind."""
    out = Path(out_dir)
    figures = draw_figures(rows, result, records)
    if figures.overview:
        atomic_write_bytes(out / "report.png", figures.overview)
    for table, png in figures.seeds.items():
        atomic_write_bytes(out / figures.seeds_file(table), png)
    run_files = [(caption, Path(os.path.relpath(path, out)).as_posix()) for caption, path in figures.runs]
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_text(md_path, render_markdown(rows, result, plot_file="report.png" if figures.overview else None,
                                               figures=figures, records=records, run_figure_files=run_files))
    atomic_write_text(html_path, render_html(rows, result, figures, records=records))
    return md_path, html_path
