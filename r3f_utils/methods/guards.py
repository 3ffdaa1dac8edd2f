"""Stop training at the first non-finite loss, naming the step and the loss parts.

Without this, a diverged run goes unnoticed: the Trainer's ``logging_nan_inf_filter`` logs a finite ``loss``
while every parameter is NaN, ``train()`` returns normally and the run ends with a meaningless metric.
Method trainers (R3F, SMART, FreeLB, ...) call :func:`check_finite_loss` with their loss parts in
``compute_loss``; :class:`FiniteLossGuard` (a ``TrainerCallback``) also catches a non-finite ``grad_norm``
for trainers that do not compute their own loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

__all__ = ["FiniteLossGuard", "NonFiniteLossError", "check_finite_loss"]

_ADVICE = ("lower the learning rate, enable gradient clipping (max_grad_norm) or use bf16 instead of fp16; "
           "the parameters after this step would be NaN")


class NonFiniteLossError(FloatingPointError):
    """The training loss (or a part of it, or the gradient norm) is NaN or infinite at ``step``."""

    def __init__(self, step: int, parts: Mapping[str, float]):
        self.step = step
        self.parts = dict(parts)
        shown = ", ".join(f"{name}={value:g}" for name, value in self.parts.items())
        super().__init__(f"training step {step}: non-finite loss ({shown}): {_ADVICE}")


def _value(x: Any) -> float:
    return float(x.detach().float().mean()) if hasattr(x, "detach") else float(x)


def check_finite_loss(step: int, loss: Any, **parts: Any) -> None:
    """Raise :class:`NonFiniteLossError` if ``loss`` is not finite; the message lists ``loss`` and ``parts``
    (e.g. ``task_loss=``, ``symm_kl=``), tensors or floats. Costs one device sync per call."""
    total = _value(loss)
    if math.isfinite(total):
        return
    raise NonFiniteLossError(step, {"loss": total, **{k: _value(v) for k, v in parts.items()}})


class FiniteLossGuard(TrainerCallback):
    """Stops training when a logged ``grad_norm`` or ``loss`` is not finite (any Trainer)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any):
        logs = logs or {}
        bad = {k: float(logs[k]) for k in ("loss", "grad_norm") if isinstance(logs.get(k), (int, float))
               and not math.isfinite(float(logs[k]))}
        if bad:
            raise NonFiniteLossError(state.global_step, {**bad, **{k: float(v) for k, v in logs.items()
                                                                  if k == "symm_kl"}})
        return control
