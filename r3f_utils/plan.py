"""``reproduce --dry-run``: what a batch would run, and its estimated cost, without running anything.

One line per experiment (the registry rows it feeds, its seeds, its notebook, updates and the estimated
GPU-hours per run from :func:`r3f_utils.describe.describe_row`'s cost model), then the totals. With
``--resume`` the seeds that already have a ``results.json`` are counted as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .describe import describe_row
from .layout import RESULTS_FILENAME
from .recipes import GPU
from .registry import RegistryRow
from .runner import Job

__all__ = ["format_plan"]


def format_plan(jobs: Sequence[Job], rows: Sequence[RegistryRow], profile: str, *,
                batch: Path | None = None) -> str:
    """The plan of ``jobs`` as text (``batch``: a batch being resumed; its finished seeds are not rerun)."""
    by_id = {r.id: r for r in rows}
    experiments: dict[str, list[Job]] = {}
    for job in jobs:
        experiments.setdefault(job.experiment, []).append(job)
    lines = [f"{'experiment':<44} {'seeds':>5} {'todo':>4} {'updates':>8} {'GPU-h/run':>9}  notebook  rows"]
    total_hours, known, todo_runs = 0.0, True, 0
    for experiment, members in experiments.items():
        first = members[0]
        # the cost model describes the paper's recipes; smoke and cpu run on CPU (no GPU-hours)
        desc = describe_row(by_id[first.rows[0]], profile) if profile == "paper" else None
        todo = [j for j in members if batch is None or not (batch / j.folder / RESULTS_FILENAME).is_file()]
        todo_runs += len(todo)
        gpu_hours = None if desc is None else desc.gpu_hours
        if gpu_hours is None:
            known = False
        else:
            total_hours += gpu_hours * len(todo)
        hours = "-" if gpu_hours is None else f"{gpu_hours:.2f}"
        updates = first.parameters.get("max_updates", "-") if desc is None or desc.updates is None else desc.updates
        lines.append(f"{experiment:<44} {len(members):>5} {len(todo):>4} {updates:>8} {hours:>9}  "
                     f"{first.notebook.name}  {', '.join(first.rows)}")
    n_rows = len({r for j in jobs for r in j.rows})
    lines.append("")
    lines.append(f"{profile} profile: {n_rows} rows, {len(experiments)} experiments, {len(jobs)} runs "
                 f"({todo_runs} to run{'' if batch is None else f', {len(jobs) - todo_runs} finished in {batch}'})")
    if profile != "paper":
        lines.append(f"GPU-hours: none (the {profile} profile runs on CPU: "
                     + ("tiny models, seconds per run)" if profile == "smoke" else "MiniLM, minutes per run)"))
    else:
        estimate = f"{total_hours:,.1f}" + ("" if known else " for the runs with an estimate ('-': none)")
        lines.append(f"estimated GPU-hours, runs to do: {estimate} (one {GPU[0]}, {GPU[2]:.0%} of "
                     f"{GPU[1] / 1e12:.0f} TFLOP/s bf16; training only; r3f_utils/recipes.py)")
    lines.append("dry run: nothing was run and no folder was created")
    return "\n".join(lines)
