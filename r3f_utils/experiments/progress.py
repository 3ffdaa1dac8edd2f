"""What a long run shows while it trains: a periodic progress line with an ETA, and the reporting integrations.

The notebooks turn the Trainer's tqdm bar off (in a papermill log it is thousands of carriage returns); instead
:class:`ProgressLine` prints one line every ``every_s`` seconds (default a minute, so a smoke run of seconds
prints nothing): ``step 1200/3120 (38%) · loss 0.412 · 12.3 min elapsed · ETA 19.7 min``. In a ``reproduce`` batch it
lands in the run's ``papermill.log`` (``tail -f runs/<batch>/<experiment>/seed-<k>/papermill.log``); ``train``
prints it on the console.

``report_to`` (a notebook parameter) is the Trainer's: ``none`` (default), ``tensorboard``, ``wandb``, ``all`` or a
comma-separated list; an integration that is not installed is refused before training, naming the package.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from transformers import TrainerCallback

__all__ = ["REPORT_TO_PACKAGES", "ProgressLine", "resolve_report_to"]

# the integrations the notebooks document, and the package each needs
REPORT_TO_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
                      "trackio": "trackio"}


def resolve_report_to(report_to: str | list[str] | None) -> list[str]:
    """The Trainer's ``report_to`` list for a notebook's ``report_to`` parameter (ValueError naming what is wrong)."""
    if report_to is None:
        return []
    names = [n.strip() for n in (report_to.split(",") if isinstance(report_to, str) else report_to) if n.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return ["all"]
    from transformers.integrations import get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    for name in names:
        if name not in REPORT_TO_PACKAGES:
            raise ValueError(f"parameter report_to={report_to!r}: unknown integration {name!r}; use none, all or a "
                             f"comma-separated list of {', '.join(REPORT_TO_PACKAGES)}")
        if name not in available:
            raise ValueError(f"parameter report_to={report_to!r}: {name} is not installed "
                             f"(pip install {REPORT_TO_PACKAGES[name]}), or use report_to='none'")
    return names


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class ProgressLine(TrainerCallback):
    """Print ``step s/N (p%) · loss · elapsed · ETA`` every ``every_s`` seconds of training, and a last line at
    the end when it printed any. The ETA extrapolates the steps done in this process (a resumed run's earlier
    steps are not counted as fast)."""

    def __init__(self, every_s: float = 60.0, stream: TextIO | None = None, clock: Any = time.monotonic) -> None:
        self.every_s = every_s
        self.stream = stream
        self.clock = clock
        self.start: float | None = None
        self.first_step = 0
        self.last_print = 0.0
        self.loss: float | None = None
        self.printed = False

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)
        self.printed = True

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.last_print = self.clock()
        self.first_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_step_end(self, args, state, control, **kwargs):
        now = self.clock()
        if self.start is None or now - self.last_print < self.every_s:
            return
        self.last_print = now
        total, step = state.max_steps, state.global_step
        elapsed = now - self.start
        done = step - self.first_step
        eta = elapsed / done * (total - step) if done > 0 and total else None
        loss = "" if self.loss is None else f" · loss {self.loss:.4g}"
        percent = f" ({100 * step / total:.0f}%)" if total else ""
        self._print(f"step {step}/{total}{percent}{loss} · {_minutes(elapsed)} elapsed"
                    + ("" if eta is None else f" · ETA {_minutes(eta)}"))

    def on_train_end(self, args, state, control, **kwargs):
        if self.printed and self.start is not None:
            self._print(f"step {state.global_step}/{state.max_steps} · done in {_minutes(self.clock() - self.start)}")
