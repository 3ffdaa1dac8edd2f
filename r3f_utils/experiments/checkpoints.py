"""Checkpoints of a notebook run: the shared evaluate/checkpoint arguments, train with resume from
``<run>/checkpoints``, and clean them up afterwards.

Shared by every experiment family. The runner's ``--resume`` moves an interrupted attempt's checkpoints into
the new attempt's run folder, where :func:`train_with_resume` picks the last one up.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .progress import ProgressLine, resolve_report_to


def last_complete_checkpoint(checkpoint_dir: Path) -> str | None:
    """The newest checkpoint folder that was saved completely, or None.

    The Trainer writes ``trainer_state.json`` last; a process killed while saving leaves a folder without it
    (or with a truncated one), which ``transformers.trainer_utils.get_last_checkpoint`` would pick and the
    resume would fail on. Such incomplete folders are skipped.
    """
    if not checkpoint_dir.is_dir():
        return None
    steps = []
    for path in checkpoint_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name[len(PREFIX_CHECKPOINT_DIR) + 1 :]
        if path.is_dir() and suffix.isdigit():
            steps.append((int(suffix), path))
    for _, path in sorted(steps, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # killed while saving
        return str(path)
    return None


def train_with_resume(
    trainer: Trainer, checkpoint_dir: Path, *, best_metric_key: str = "best_metric", progress_every_s: float = 60.0
) -> dict[str, Any]:
    """``trainer.train()``, resuming from the last checkpoint in ``checkpoint_dir`` if a run was interrupted.

    With ``load_best_model_at_end`` the best checkpoint is loaded back at the end. Returns the training
    metrics plus ``global_step``, ``resumed_from`` and ``best_checkpoint`` (folder names), the best
    checkpoint's metric (under ``best_metric_key``), ``last_train_loss`` and ``seconds``.
    """
    last = last_complete_checkpoint(checkpoint_dir)
    if progress_every_s and not any(isinstance(c, ProgressLine) for c in trainer.callback_handler.callbacks):
        trainer.add_callback(ProgressLine(progress_every_s))  # a line with an ETA every minute of training
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    best = state.best_model_checkpoint
    losses = [e["loss"] for e in state.log_history if "loss" in e]
    return {
        **output.metrics,
        "global_step": state.global_step,
        "resumed_from": None if last is None else Path(last).name,
        "best_checkpoint": None if best is None else Path(best).name,
        best_metric_key: state.best_metric,
        "last_train_loss": losses[-1] if losses else None,
        "seconds": round(time.perf_counter() - start, 2),
    }


def remove_checkpoints(checkpoint_dir: Path, *, keep: bool = False) -> None:
    """Delete ``checkpoint_dir`` once the results are written, unless ``keep`` (a large model's checkpoint
    with optimizer state takes several GB)."""
    if not keep and checkpoint_dir.is_dir():
        shutil.rmtree(checkpoint_dir)


def save_strategy(profile: str) -> str:
    """When a run saves a checkpoint: after every evaluation (``"steps"``: an interrupted run loses at most one
    evaluation interval), or, in the smoke profile, only after an evaluation that improved the best metric
    (``"best"``: runs of seconds, ~24 saves each otherwise; an interrupted run resumes from its best checkpoint
    and redoes the updates after it, to the same result). The checkpoint loaded at the end is the same."""
    return "best" if profile == "smoke" else "steps"


def checkpointed_run_arguments(
    checkpoint_dir: Path, *, eval_steps: int, seed: int, fp16: bool, bf16: bool, profile: str = "paper",
    report_to: str | list[str] | None = "none",
) -> dict[str, Any]:
    """The ``TrainingArguments`` every notebook run shares: fairseq's polynomial (linear) decay to 0, evaluate
    every ``eval_steps`` and checkpoint as :func:`save_strategy` says, keep the best and the last checkpoint
    (resume) and reload the best at the end, seeded data order, mixed precision as asked, the reporting
    integrations ``report_to`` names (:func:`r3f_utils.experiments.progress.resolve_report_to`; default none), no
    tqdm bar (:func:`train_with_resume` prints a progress line a minute instead)."""
    return {
        "output_dir": str(checkpoint_dir),
        "lr_scheduler_type": "polynomial",
        "lr_scheduler_kwargs": {"lr_end": 0.0, "power": 1.0},  # fairseq polynomial_decay defaults
        "eval_strategy": "steps",
        "eval_steps": eval_steps,
        "save_strategy": save_strategy(profile),
        "save_steps": eval_steps,  # read only by "steps"
        "save_total_limit": 2,  # the best and the last (for resume)
        "load_best_model_at_end": True,
        "logging_steps": max(1, min(50, eval_steps)),
        "seed": seed,
        "data_seed": seed,
        "fp16": fp16,
        "bf16": bf16,
        "report_to": resolve_report_to(report_to),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        # pinned memory only helps a GPU; on CPU torch warns once per DataLoader (25 times per smoke run)
        "dataloader_pin_memory": _cuda_available(),
        # several CPU processes (torchrun/accelerate without GPUs): only use_cpu makes the Trainer join the gloo
        # group as DDP; without it every rank trained alone into the same checkpoint folder
        **({"use_cpu": True} if _distributed_without_gpu() else {}),
    }


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _distributed_without_gpu() -> bool:
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
