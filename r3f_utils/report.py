"""The reproduction report (``report.md`` + a self-contained ``report.html``), written for a person to read.

Order: a summary (rows reproduced / above / below / missing, claims holding, what is compared against), the
paper's tables laid out as the paper prints them (tasks across, model and method down; each cell the reference
value and the reproduced value with its seed spread), the claims, per-seed distribution plots where a row has
several seeds, every figure a run lists in its ``results.json`` (``extra["figures"]``, file names relative to
its run folder), and last the full list, one line per registered metric.

The profile decides the reference: ``paper`` compares with the paper's numbers; ``smoke`` (and ``cpu``)
compare with the values pinned in the registry for that profile, which are not claims about the paper. The
HTML embeds every image as base64 and needs nothing else. Every file is written atomically. No
torch/transformers import; matplotlib is imported only to draw.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, atomic_write_text
from .checker import CheckResult, Verdict
from .registry import RegistryRow
from .results import ResultRecord

__all__ = [
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
# a row's verdict is its worst metric's, in this order
_ROW_ORDER = ("invalid", "below", "above", "missing", "measured", "reproduced")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
                ".gif": "image/gif"}


def reference_label(profile: str) -> str:
    """What the checker compared the reproduced values with, in words."""
    if profile == "paper":
        return "the paper's printed values"
    return f"the values pinned for the {profile} profile in the registry (regression pins, not the paper's numbers)"


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
        experiment = to_experiment.get(rec.row) or to_experiment.get(rec.experiment)
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
    return f" [{_fmt(min(values))}–{_fmt(max(values))}, sd {statistics.stdev(values):.2f}]"


# ---- paper-style tables ----------------------------------------------------------------------------------


def _paper_tables(
    rows: Sequence[RegistryRow], result: CheckResult, seeds: dict[tuple[str, str], list[tuple[int, float]]]
) -> list[tuple[str, list[str], list[tuple[str, list[tuple[str, Verdict | None]]]]]]:
    """Per table: (title, column labels, [(row label, [(cell text, verdict)])])."""
    verdicts = {(v.row, v.metric): v for v in result.verdicts}
    ref = _short_reference(result.profile)
    tables: dict[str, list[RegistryRow]] = {}
    for row in rows:
        tables.setdefault(row.table, []).append(row)
    out = []
    for table, members in tables.items():
        columns: list[str] = []
        cells: dict[str, dict[str, tuple[str, Verdict | None]]] = {}
        task_metrics: dict[str, set[str]] = defaultdict(set)
        for row in members:
            task_metrics[row.task].update(row.metrics)
        several_aggregations = len({r.aggregation for r in members}) > 1
        for row in members:
            label = f"{row.model} · {row.method}" + (f" · {row.aggregation}" if several_aggregations else "")
            label += "" if row.role == "target" else " (reported)"
            for metric in row.metrics:
                column = row.task if len(task_metrics[row.task]) == 1 else f"{row.task} {metric}"
                if column not in columns:
                    columns.append(column)
                v = verdicts.get((row.id, metric))
                paper = row.printed.get(metric) or _fmt(row.metrics[metric])
                text = f"paper {paper}"
                if v is not None and result.profile != "paper":
                    text += f" · {ref} {_fmt(v.expected)}"
                values = [x for _, x in seeds.get((row.id, metric), [])]
                if v is not None and v.reproduced is not None:
                    text += f" → {_fmt(v.reproduced)}{_spread(values)} ({v.n_seeds}/{v.seeds_needed} seeds)"
                cells.setdefault(label, {})[column] = (text, v)
        body = [(label, [by_col.get(c, ("", None)) for c in columns]) for label, by_col in cells.items()]
        out.append((f"Table {table}", columns, body))
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


def plot_png(result: CheckResult) -> bytes:
    """Scatter of the reference value (x) against the reproduced value (y), one point per row and metric."""
    plt = _pyplot()
    points = [
        (v.expected, v.reproduced, v)
        for v in result.verdicts
        if v.reproduced is not None and v.expected is not None and math.isfinite(v.reproduced)
    ]
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    if points:
        for name, color in _COLORS.items():
            sel = [(x, y) for x, y, v in points if v.verdict == name]
            if sel:
                ax.scatter(*zip(*sel, strict=True), s=28, color=color, label=f"{name} ({len(sel)})", zorder=3)
        values = [c for x, y, _ in points for c in (x, y)]
        lo, hi = min(values), max(values)
        pad = max(1e-3, 0.05 * (hi - lo))
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9e9e9e", lw=1, ls="--", label="y = x")
        if len(points) <= 20:
            for x, y, v in points:
                ax.annotate(f"{v.row}:{v.metric}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no reproduced values yet", ha="center", va="center", transform=ax.transAxes)
    ref = _short_reference(result.profile)
    ax.set_xlabel(f"{ref} value")
    ax.set_ylabel("reproduced value")
    ax.set_title(f"{ref} vs reproduced ({result.profile} profile)")
    ax.grid(alpha=0.3)
    return _png(fig)


def seeds_png(result: CheckResult, seeds: dict[tuple[str, str], list[tuple[int, float]]]) -> bytes | None:
    """One strip per row and metric with several seeds: each seed a dot, the aggregate a bar, the reference a
    diamond. None when no row has several seeds."""
    strips = [(v, [x for _, x in seeds[(v.row, v.metric)]]) for v in result.verdicts
              if len(seeds.get((v.row, v.metric), [])) >= 2]
    if not strips:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(strips) + 1.5), dpi=100)
    for i, (v, values) in enumerate(strips):
        color = _COLORS.get(v.verdict, "#333333")
        ax.scatter(values, [i] * len(values), s=18, color=color, alpha=0.7, zorder=3)
        if v.reproduced is not None:
            ax.plot([v.reproduced] * 2, [i - 0.3, i + 0.3], color=color, lw=2)
        if v.expected is not None:
            ax.scatter([v.expected], [i], marker="D", s=36, facecolor="none", edgecolor="black", zorder=4)
    ax.set_yticks(range(len(strips)), [f"{v.row}:{v.metric} ({len(x)})" for v, x in strips], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"value per seed (dots), aggregate (bar), {_short_reference(result.profile)} (diamond)")
    ax.set_title(f"Per-seed distributions ({result.profile} profile)")
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
    seeds_file: str | None = None,
    records: Sequence[ResultRecord] = (),
    figures: Sequence[tuple[str, str]] = (),
) -> str:
    """The report as Markdown. ``figures``: (caption, path relative to the report) of the runs' figures."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = seed_values(rows, records, result.profile)
    out = [
        "# R3F/R4F reproduction report",
        "",
        f"Profile: **{result.profile}**. Compared with: {reference_label(result.profile)}. Generated {stamp}.",
        "",
        *(f"- {line}" for line in _summary_lines(result)),
        "",
    ]
    if plot_file:
        out += [f"![{_short_reference(result.profile)} vs reproduced]({plot_file})", ""]
    for title, columns, body in _paper_tables(rows, result, seeds):
        out += [f"## {title}", "", "| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for label, cells in body:
            texts = [f"{t} **{v.verdict}**" if v is not None and t else t for t, v in cells]
            out.append(f"| {label} | " + " | ".join(x.replace("|", "\\|") for x in texts) + " |")
        out.append("")
    claims = _claims(result)
    if claims:
        out += ["## Claims", "", "| Claim | Statement | Verdict | Operands |", "|---|---|---|---|"]
        for claim in claims:
            out.append("| " + " | ".join(x.replace("|", "\\|") for x in _claim_fields(claim)) + " |")
        out.append("")
    if seeds_file:
        out += ["## Per-seed distributions", "", f"![per-seed values]({seeds_file})", ""]
    if figures:
        out += ["## Figures of the runs", ""]
        out += [f"![{caption}]({path})\n\n{caption}\n" for caption, path in figures]
    out += ["## Every registered number", "", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    by_id = {r.id: r for r in rows}
    for v in result.verdicts:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in _detail_cells(by_id[v.row], v)) + " |")
    if result.warnings:
        out += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    return "\n".join(out) + "\n"


def _img(png: bytes, alt: str, element_id: str, mime: str = "image/png") -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<img id="{element_id}" alt="{html.escape(alt)}" src="data:{mime};base64,{data}"'
            " onload=\"this.setAttribute('data-rendered', this.naturalWidth + 'x' + this.naturalHeight)\">")


def render_html(
    rows: Sequence[RegistryRow],
    result: CheckResult,
    png: bytes,
    *,
    seeds_png_bytes: bytes | None = None,
    records: Sequence[ResultRecord] = (),
    figures: Sequence[tuple[str, Path]] = (),
) -> str:
    """A self-contained HTML page (every image embedded). ``figures``: (caption, file) of the runs' figures."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = seed_values(rows, records, result.profile)
    esc = html.escape
    parts = [
        "<h1>R3F/R4F reproduction report</h1>",
        f'<p id="profile">Profile: <b>{esc(result.profile)}</b>. Compared with: '
        f"{esc(reference_label(result.profile))}. Generated {stamp}.</p>",
        '<ul id="summary">' + "".join(
            f"<li>{esc(line).replace('**', '')}</li>" for line in _summary_lines(result)) + "</ul>",
        f"<figure>{_img(png, 'reference vs reproduced', 'plot')}<figcaption>"
        f"{esc(_short_reference(result.profile))} value against reproduced value, one point per row and metric."
        "</figcaption></figure>",
    ]
    for title, columns, body in _paper_tables(rows, result, seeds):
        head = "<th></th>" + "".join(f"<th>{esc(c)}</th>" for c in columns)
        trs = []
        for label, cells in body:
            tds = "".join(
                f'<td class="{v.verdict if v else ""}">{esc(t)}' + (f"<br><b>{esc(v.verdict)}</b>" if v and t else "")
                + "</td>" for t, v in cells)
            trs.append(f"<tr><th>{esc(label)}</th>{tds}</tr>")
        parts.append(f'<h2>{esc(title)}</h2><table class="paper"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{''.join(trs)}</tbody></table>")
    claims = _claims(result)
    if claims:
        trs = "".join(
            f'<tr data-claim="{esc(c.claim)}">' + "".join(
                f'<td class="{esc(c.verdict) if i == 2 else ""}">{esc(x)}</td>' for i, x in enumerate(_claim_fields(c)))
            + "</tr>" for c in claims)
        parts.append('<h2>Claims</h2><table id="claims"><thead><tr><th>Claim</th><th>Statement</th><th>Verdict</th>'
                     f"<th>Operands</th></tr></thead><tbody>{trs}</tbody></table>")
    if seeds_png_bytes:
        parts.append(f"<h2>Per-seed distributions</h2><figure>{_img(seeds_png_bytes, 'per-seed values', 'seeds')}"
                     "</figure>")
    if figures:
        parts.append("<h2>Figures of the runs</h2>")
        for i, (caption, path) in enumerate(figures):
            mime = _IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
            parts.append(f"<figure>{_img(path.read_bytes(), caption, f'figure-{i}', mime)}"
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
    head = "".join(f"<th>{esc(c)}</th>" for c in _COLUMNS)
    by_id = {r.id: r for r in rows}
    body = []
    for v in result.verdicts:
        cells = _detail_cells(by_id[v.row], v)
        tds = "".join(f"<td>{esc(c)}</td>" for c in cells[:-1])
        tds += f'<td class="verdict {v.verdict}">{esc(cells[-1])}</td>'
        body.append(f'<tr data-row="{esc(v.row)}" data-metric="{esc(v.metric)}">{tds}</tr>')
    parts.append(f'<h2>Every registered number</h2><table id="results"><thead><tr>{head}</tr></thead>'
                 f"<tbody>\n{chr(10).join(body)}\n</tbody></table>")
    if result.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in result.warnings) + "</ul>")
    css = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px;"
        "margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
        "th{background:#f0f0f0}img{max-width:100%}"
        + "".join(f".{k}{{color:{c}}}td.{k} b,.verdict.{k}{{font-weight:bold}}" for k, c in _COLORS.items())
    )
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>R3F/R4F reproduction report'
            f"</title>\n<style>{css}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


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
    seeds = seed_values(rows, records, result.profile)
    png = plot_png(result)
    seeds_png_bytes = seeds_png(result, seeds)
    found = [(f"{rec.row} seed {rec.seed}: {path.name}", path) for rec, path, problem in run_figures(records)
             if not problem]
    for rec, path, problem in run_figures(records):
        if problem:
            result.warnings.append(f"figure {path.name} of {rec.row} seed {rec.seed}: {problem}")
    atomic_write_bytes(out / "report.png", png)
    if seeds_png_bytes:
        atomic_write_bytes(out / "report-seeds.png", seeds_png_bytes)
    md_figures = [(caption, Path(os.path.relpath(path, out)).as_posix()) for caption, path in found]
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_text(md_path, render_markdown(rows, result, plot_file="report.png",
                                               seeds_file="report-seeds.png" if seeds_png_bytes else None,
                                               records=records, figures=md_figures))
    atomic_write_text(html_path, render_html(rows, result, png, seeds_png_bytes=seeds_png_bytes, records=records,
                                             figures=found))
    return md_path, html_path
