"""Markdown and self-contained HTML report: paper vs reproduced, one table line per registered metric.

The HTML embeds its plot as a base64 PNG (matplotlib, Agg backend) and needs nothing else to render.
No torch/transformers import; matplotlib is imported only to draw the plot.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from .checker import CheckResult, Verdict
from .registry import RegistryRow

__all__ = ["plot_png", "render_html", "render_markdown", "write_report"]

_COLUMNS = ("Row", "Task", "Dataset", "Model", "Method", "Metric", "Paper", "Reproduced", "Delta", "Verdict")
_COLORS = {
    "reproduced": "#2e7d32",
    "above": "#1565c0",
    "below": "#c62828",
    "missing": "#757575",
    "invalid": "#6a1b9a",
}


def _cells(row: RegistryRow, v: Verdict) -> list[str]:
    dataset = row.dataset.hub_id + (f" ({row.dataset.config})" if row.dataset.config else "")
    # a figure metric has no printed number
    paper = "(figure)" if v.paper is None else row.printed.get(v.metric, format(v.paper, "g"))
    if row.printed.get(v.metric) and v.paper is not None:
        paper = f"{paper} = {v.paper:g}"
    reproduced = "-" if v.reproduced is None else f"{v.reproduced:.2f}"
    if v.reproduced is not None and v.n_seeds < v.seeds_needed:
        reproduced += f" ({v.n_seeds}/{v.seeds_needed} seeds)"
    delta = "-" if v.delta is None else f"{v.delta:+.2f}"
    return [row.id, row.task, dataset, row.model, row.method, v.metric, paper, reproduced, delta, v.verdict]


def _lines(rows: Sequence[RegistryRow], result: CheckResult) -> list[tuple[list[str], Verdict]]:
    by_id = {r.id: r for r in rows}
    return [(_cells(by_id[v.row], v), v) for v in result.verdicts]


def plot_png(result: CheckResult) -> bytes:
    """Scatter of paper value (x) against reproduced value (y), one point per row and metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [
        (v.expected, v.reproduced, v)
        for v in result.verdicts
        if v.reproduced is not None and v.expected is not None and math.isfinite(v.reproduced)
    ]
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    try:
        if points:
            for name, color in _COLORS.items():
                sel = [(x, y) for x, y, v in points if v.verdict == name]
                if sel:
                    ax.scatter(
                        *zip(*sel, strict=True), s=28, color=color, label=f"{name} ({len(sel)})", zorder=3
                    )
            values = [c for x, y, _ in points for c in (x, y)]
            lo, hi = min(values), max(values)
            pad = max(1e-3, 0.05 * (hi - lo))
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9e9e9e", lw=1, ls="--", label="y = x")
            if len(points) <= 20:
                for x, y, v in points:
                    ax.annotate(
                        f"{v.row}:{v.metric}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points"
                    )
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no reproduced values yet", ha="center", va="center", transform=ax.transAxes)
        ref = "smoke expectation" if result.profile == "smoke" else "paper value"
        ax.set_xlabel(ref)
        ax.set_ylabel("reproduced value")
        ax.set_title(f"R3F/R4F reproduction: {ref} vs reproduced ({result.profile} profile)")
        ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _summary(result: CheckResult) -> str:
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def render_markdown(rows: Sequence[RegistryRow], result: CheckResult, *, plot_file: str | None = None) -> str:
    """A Papers-with-Code-style Markdown table (one line per registered metric)."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = [
        "# R3F/R4F reproduction report",
        "",
        f"Profile: **{result.profile}**. Generated {stamp}. Verdicts: {_summary(result)}.",
        "",
    ]
    if plot_file:
        out += [f"![paper vs reproduced]({plot_file})", ""]
    out.append("| " + " | ".join(_COLUMNS) + " |")
    out.append("|" + "---|" * len(_COLUMNS))
    for cells, _ in _lines(rows, result):
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if result.warnings:
        out += ["", "## Warnings", "", *(f"- {w}" for w in result.warnings)]
    return "\n".join(out) + "\n"


def render_html(rows: Sequence[RegistryRow], result: CheckResult, png: bytes) -> str:
    """A self-contained HTML page: summary, embedded plot, the table."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
    body = []
    for cells, v in _lines(rows, result):
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells[:-1])
        tds += f'<td class="verdict {v.verdict}">{html.escape(cells[-1])}</td>'
        body.append(f'<tr data-row="{html.escape(v.row)}" data-metric="{html.escape(v.metric)}">{tds}</tr>')
    image = base64.b64encode(png).decode("ascii")
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
    css = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f0f0f0}"
        + "".join(f".{k}{{color:{c};font-weight:bold}}" for k, c in _COLORS.items())
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>R3F/R4F reproduction report</title>
<style>{css}</style></head>
<body>
<h1>R3F/R4F reproduction report</h1>
<p>Profile: <b>{html.escape(result.profile)}</b>. Generated {stamp}.
Verdicts: {html.escape(_summary(result))}.</p>
<figure><img id="plot" alt="paper vs reproduced" src="data:image/png;base64,{image}"
 onload="this.setAttribute('data-rendered', this.naturalWidth + 'x' + this.naturalHeight)">
<figcaption>Paper value against reproduced value, one point per row and metric.</figcaption></figure>
<table id="results"><thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
</body></html>
"""


def write_report(rows: Sequence[RegistryRow], result: CheckResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` (+ ``report.png``) and ``report.html`` into ``out_dir``; return (md, html)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_png(result)
    (out / "report.png").write_bytes(png)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(render_markdown(rows, result, plot_file="report.png"), encoding="utf-8")
    html_path.write_text(render_html(rows, result, png), encoding="utf-8")
    return md_path, html_path
