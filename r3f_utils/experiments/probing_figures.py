"""Figures of the probing studies, drawn like the paper's: bars per probed task and method (Figure 3), lines over
the chain per method (Figures 4 and 5). Seeds of one method are shown as their mean with a min-max error bar.

A run draws two PNGs beside its results.json: its own values (``probing_<study>.png``) and, when it runs inside
a runner batch (``<batch>/<experiment>/seed-<k>/``), every finished run of the same study and profile in that
batch together with its own (``probing_<study>_methods.png``), so the last method of a batch shows them all.
No torch import; matplotlib (Agg) is imported when drawing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["METHOD_COLORS", "batch_runs", "draw_run_figures", "plot_study"]

METHOD_COLORS = {"standard": "#757575", "std++": "#212121", "smart": "#8e24aa", "freelb": "#f9a825",
                 "r3f": "#1e88e5", "r4f": "#e53935"}
TITLES = {
    "generalization": "Probing the SST-2-tuned encoder on other tasks (Figure 3)",
    "degradation": "Source-task probe along the sequential chain (Figure 4)",
    "retention": "Probing the next task along the cyclic chain (Figure 5)",
}

# a run: (method, metrics of one seed)
Run = tuple[str, Mapping[str, float]]


def _summary(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.fmean(values), min(values), max(values)


def plot_study(study: str, order: Sequence[Sequence[str]], runs: Sequence[Run], path: str | Path,
               *, title: str | None = None) -> Path:
    """Draw ``runs`` of one study into ``path`` (PNG) and return it.

    ``order`` lists ``(metric name, x label)`` pairs in the figure's order (results.json ``extra.probe_order``).
    Figure 3 (``generalization``) is a grouped bar chart, the chains (``degradation``, ``retention``) line charts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(m for m, _ in runs))
    names = [str(n) for n, _ in order]
    labels = [str(label) for _, label in order]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(names) + 2), 4.2), dpi=110)
    try:
        width = 0.8 / max(1, len(methods))
        for j, method in enumerate(methods):
            seeds = [m for meth, m in runs if meth == method]
            stats = [_summary([s[n] for s in seeds if n in s and math.isfinite(s[n])] or [math.nan]) for n in names]
            mean = [s[0] for s in stats]
            err = [[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]
            color = METHOD_COLORS.get(method)
            label = f"{method} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})"
            if study == "generalization":
                xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(names))]
                ax.bar(xs, mean, width, yerr=err if len(seeds) > 1 else None, color=color, label=label, capsize=2)
            else:
                ax.errorbar(range(len(names)), mean, yerr=err if len(seeds) > 1 else None, color=color,
                            marker="o", label=label, capsize=2)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(labels, rotation=30 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                           fontsize=8)
        ax.set_ylabel("probe dev metric (accuracy; MCC for CoLA) x100")
        ax.set_title(title or TITLES.get(study, study), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if methods:
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def batch_runs(output_dir: str | Path, study: str, profile: str) -> list[tuple[Path, Run]]:
    """Finished runs of ``study`` in ``profile`` in the runner batch that holds ``output_dir``
    (``<batch>/<experiment>/seed-<k>/results.json``), other than ``output_dir`` itself."""
    from r3f_utils.layout import RESULTS_FILENAME, batch_folder, run_dirs
    from r3f_utils.results import ResultsError, read_results

    run_dir = Path(output_dir).resolve()
    found: list[tuple[Path, Run]] = []
    for path in [d / RESULTS_FILENAME for d in run_dirs(batch_folder(run_dir))]:
        if path.parent == run_dir or not path.is_file():
            continue
        try:
            (record,) = read_results(path)
        except ResultsError:
            continue  # not ours to judge; the checker reports malformed files
        if record.profile == profile and record.extra.get("study") == study:
            found.append((path.parent, (str(record.extra.get("method")), record.metrics)))
    return found


def draw_run_figures(output_dir: str | Path, study: str, method: str, metrics: Mapping[str, float],
                     order: Sequence[Sequence[str]], profile: str, seed: int) -> list[str]:
    """Draw this run's figure and, inside a batch, the figure of every finished run of the study with this one.
    Returns the file names (relative to ``output_dir``) for results.json ``extra["figures"]``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    own: Run = (method, dict(metrics))
    files = [plot_study(study, order, [own], out / f"probing_{study}.png",
                        title=f"{TITLES.get(study, study)}: {method}, seed {seed}").name]
    others = batch_runs(out, study, profile)
    if others:
        runs: list[Any] = [r for _, r in others] + [own]
        runs.sort(key=lambda r: list(METHOD_COLORS).index(r[0]) if r[0] in METHOD_COLORS else len(METHOD_COLORS))
        files.append(plot_study(study, order, runs, out / f"probing_{study}_methods.png").name)
    return files
