"""Figure 1 (wall time on SST-2): training seconds to the best checkpoint and per epoch, and the violin plot.

Paper: "training wall time analysis on the SST-2 dataset. Each method includes a violin plot for 10 random
runs. We define wall-time as the training time in seconds to best checkpoint." The figure prints no numbers;
the paper's statement about it is a registry claim (``fig1.sst2.r3f_faster_than_adversarial``).

What is timed (our choice, the paper does not say): the Trainer's training steps only (forward, backward,
optimiser step, data loading), from the first step to the step of the best checkpoint. Evaluation and
checkpoint saving are left out: they cost the same for every method and would blur the comparison. The
clock survives a resume: it is saved beside every checkpoint (``wall_time.json``) and read back.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from r3f_utils.atomic import atomic_write_bytes, atomic_write_text
from r3f_utils.results import read_results

__all__ = ["METHOD_ORDER", "WallTimeCallback", "collect_wall_times", "plot_wall_time", "wall_time_metrics"]

METHOD_ORDER = ("standard", "r3f", "r4f", "smart", "freelb")
STATE_FILE = "wall_time.json"


class WallTimeCallback(TrainerCallback):
    """Sums the seconds spent in training steps and notes the running total at every evaluation.

    ``state_dir`` (the run's checkpoint folder) keeps the clock across a resume.
    """

    def __init__(self, state_dir: str | Path | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.train_seconds = 0.0
        self.steps = 0
        self.at_eval: dict[int, float] = {}
        self._start: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        path = self.state_dir / STATE_FILE if self.state_dir is not None else None
        if path is not None and path.is_file() and state.global_step > 0:  # resumed: continue the clock
            saved = json.loads(path.read_text())
            self.train_seconds, self.steps = saved["train_seconds"], saved["steps"]
            self.at_eval = {int(k): v for k, v in saved["at_eval"].items()}

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._start is not None:
            self.train_seconds += time.perf_counter() - self._start
            self.steps += 1
            self._start = None

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.at_eval[state.global_step] = self.train_seconds

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.state_dir is None:
            return
        payload = {"train_seconds": self.train_seconds, "steps": self.steps, "at_eval": self.at_eval}
        atomic_write_text(self.state_dir / STATE_FILE, json.dumps(payload))


def _best_step(best_checkpoint: str | None) -> int | None:
    match = re.search(r"checkpoint-(\d+)$", best_checkpoint or "")
    return int(match.group(1)) if match else None


def wall_time_metrics(clock: WallTimeCallback, best_checkpoint: str | None, steps_per_epoch: int
                      ) -> dict[str, float]:
    """``wall_time_to_best`` (training seconds up to the best checkpoint's step) and ``seconds_per_epoch``."""
    if clock.steps == 0:
        raise ValueError("no training step was timed: attach WallTimeCallback to the Trainer before train()")
    best = _best_step(best_checkpoint)
    if best is None or best not in clock.at_eval:
        raise ValueError(f"best checkpoint {best_checkpoint!r} has no timed evaluation (evaluated at steps "
                         f"{sorted(clock.at_eval)}): evaluate and save at the same steps")
    return {"wall_time_to_best": clock.at_eval[best],
            "seconds_per_epoch": clock.train_seconds / clock.steps * steps_per_epoch}


def collect_wall_times(batch_dir: str | Path, prefix: str = "fig1.") -> dict[str, dict[str, list[float]]]:
    """``{metric: {method: [value per run]}}`` from every ``results.json`` under ``batch_dir`` whose
    experiment starts with ``prefix`` (the runner's layout: ``<batch>/<experiment>/seed-<k>/results.json``)."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # file by file: read_results(batch_dir) refuses a folder whose run is still going (no results.json yet)
    records = [r for path in sorted(Path(batch_dir).rglob("results.json")) for r in read_results(path)]
    for record in records:
        if not record.experiment.startswith(prefix):
            continue
        method = record.parameters.get("method", record.experiment.rsplit(".", 1)[-1])
        for name in ("wall_time_to_best", "seconds_per_epoch"):
            value = record.metrics.get(name)
            if value is not None and math.isfinite(value):
                values[name][method].append(float(value))
    return {k: dict(v) for k, v in values.items()}


def plot_wall_time(batch_dir: str | Path, path: str | Path | None = None, *, title: str = "SST-2") -> Path | None:
    """Figure 1: violins of training seconds to the best checkpoint per method, beside the mean seconds per
    epoch. Saved as ``<batch_dir>/fig1_wall_time.png`` (or ``path``); None when there are no runs yet."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    values = collect_wall_times(batch_dir)
    to_best = values.get("wall_time_to_best", {})
    if not to_best:
        return None
    methods = [m for m in METHOD_ORDER if m in to_best] + sorted(set(to_best) - set(METHOD_ORDER))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    data = [to_best[m] for m in methods]
    if all(len(d) > 1 for d in data):
        left.violinplot(data, showmedians=True)
    for i, d in enumerate(data, start=1):
        left.scatter([i] * len(d), d, s=10, color="black", zorder=3)
    left.set_xticks(range(1, len(methods) + 1), methods)
    left.set_ylabel("training seconds to best checkpoint")
    left.set_title(f"{title}: wall time to best checkpoint ({min(map(len, data))}+ runs each)")
    per_epoch = values.get("seconds_per_epoch", {})
    means = [sum(per_epoch.get(m, [math.nan])) / max(1, len(per_epoch.get(m, []))) for m in methods]
    right.bar(methods, means, color="tab:gray")
    right.set_ylabel("seconds per epoch (mean over runs)")
    right.set_title("seconds per epoch")
    fig.tight_layout()
    out = Path(path) if path is not None else Path(batch_dir) / "fig1_wall_time.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())
