"""Table 1 (compute cost): count forward/backward passes of one training step, and time steps side by side.

The paper counts, per training step, forward passes (FP), backward passes (BP) and the cost in forward-pass
units, xFP = FP + 2·BP (a backward pass costs about two forward passes): standard 1/1/3, R3F and R4F 2/1/4,
SMART(S) and FreeLB(S) 1+S / 1+S / 3+3S (:func:`table1_formula`). :func:`count_passes` measures FP as the
examples that went through the model's forward divided by the batch size (a doubled batch counts 2) and BP as
the calls of ``backward`` (weight gradients) plus the calls of ``torch.autograd.grad`` (SMART's input-only
gradients with respect to the noise) in one ``Trainer.training_step``. One backward call back-propagates
through both R3F graphs, so its real cost is closer to two standard backward passes, and SMART's input-only
backward passes skip the weight gradients: :func:`time_steps` measures the wall-clock ratio too (the paper's
Figure 1 is wall time).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TrainingArguments

from r3f_utils.methods.freelb import FreeLBConfig, FreeLBTrainer
from r3f_utils.methods.r3f import R3FConfig
from r3f_utils.methods.r4f import apply_r4f
from r3f_utils.methods.smart import SMARTConfig, SMARTTrainer
from r3f_utils.methods.trainers import R3FTrainer

METHODS = ("standard", "r3f", "r4f", "smart", "freelb")


def table1_formula(method: str, steps: int = 1) -> tuple[int, int, int]:
    """(FP, BP, xFP) as Table 1 prints them; ``steps`` is S, the ascent steps of SMART and FreeLB."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in ("smart", "freelb"):
        return 1 + steps, 1 + steps, 3 + 3 * steps
    return (1, 1, 3) if method == "standard" else (2, 1, 4)


@dataclass(frozen=True)
class PassCount:
    """Passes of one training step: forward (in batch units), backward calls, and the paper's xFP."""

    forward_passes: float
    backward_passes: int
    input_backward_passes: int = 0  # of backward_passes: input-only gradients (no weight gradients)

    @property
    def cost_xfp(self) -> float:
        return self.forward_passes + 2 * self.backward_passes

    def as_metrics(self) -> dict[str, float]:
        return {"forward_passes": self.forward_passes, "backward_passes": float(self.backward_passes),
                "cost_xfp": self.cost_xfp}


def build_trainer(
    model: torch.nn.Module, method: str, r3f: R3FConfig | None = None, *, smart: SMARTConfig | None = None,
    freelb: FreeLBConfig | None = None,
) -> R3FTrainer | SMARTTrainer | FreeLBTrainer:
    """The trainer of ``method``: ``R3FTrainer`` (standard, r3f, r4f; R4F puts spectral norm on the head
    first), ``SMARTTrainer`` or ``FreeLBTrainer`` (their configs default to the published ones)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "r4f":
        apply_r4f(model)
    args = TrainingArguments(tempfile.mkdtemp(prefix="r3f-cost-"), report_to=[], disable_tqdm=True,
                             use_cpu=not torch.cuda.is_available())
    trainer: R3FTrainer | SMARTTrainer | FreeLBTrainer
    if method == "smart":
        trainer = SMARTTrainer(model=model, args=args, smart=smart or SMARTConfig())
    elif method == "freelb":
        trainer = FreeLBTrainer(model=model, args=args, freelb=freelb or FreeLBConfig())
    else:
        trainer = R3FTrainer(model=model, args=args, r3f=None if method == "standard" else (r3f or R3FConfig()))
    trainer.current_gradient_accumulation_steps = 1  # set by train(); training_step is called directly here
    return trainer


def random_batch(vocab_size: int, batch_size: int, length: int, num_labels: int = 2, seed: int = 0) -> dict:
    """A classification batch of random token ids (pass counts and step times do not depend on the text)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(5, vocab_size, (batch_size, length), generator=g),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
        "labels": torch.randint(0, num_labels, (batch_size,), generator=g),
    }


def count_passes(trainer: Any, batch: dict[str, torch.Tensor]) -> PassCount:
    """Run one ``training_step`` and count the model's forward rows, the backward calls and the calls of
    ``torch.autograd.grad`` (input-only backward passes)."""
    model = trainer.model
    rows = [0]

    def on_forward(_module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows[0] += int(ids.size(0))

    backward_calls = [0]
    real_backward = trainer.accelerator.backward

    def counting_backward(loss: torch.Tensor, **kwargs: Any) -> None:
        backward_calls[0] += 1
        real_backward(loss, **kwargs)

    grad_calls = [0]
    real_grad = torch.autograd.grad

    def counting_grad(*args: Any, **kwargs: Any) -> Any:
        grad_calls[0] += 1
        return real_grad(*args, **kwargs)

    handle = model.register_forward_pre_hook(on_forward, with_kwargs=True)
    trainer.accelerator.backward = counting_backward  # type: ignore[method-assign]
    torch.autograd.grad = counting_grad  # type: ignore[assignment]
    try:
        model.train()
        trainer.training_step(model, dict(batch))
    finally:
        handle.remove()
        trainer.accelerator.backward = real_backward  # type: ignore[method-assign]
        torch.autograd.grad = real_grad  # type: ignore[assignment]
    return PassCount(rows[0] / batch["input_ids"].size(0), backward_calls[0] + grad_calls[0], grad_calls[0])


def time_steps(trainers: dict[str, Any], batch: dict[str, torch.Tensor], steps: int, warmup: int = 1
               ) -> dict[str, float]:
    """Median seconds per ``training_step`` of each trainer, the trainers interleaved step by step."""
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for step in range(warmup + steps):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.training_step(trainer.model, dict(batch))
            trainer.model.zero_grad(set_to_none=True)
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def default_output_dir() -> str:
    """A new run folder under ``runs/notebook/`` for interactive runs (the runner always passes one)."""
    from datetime import datetime, timezone
    from pathlib import Path

    path = Path("runs") / "notebook" / f"compute_cost-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"
    path.mkdir(parents=True, exist_ok=False)
    return str(path)
