"""What every method trainer needs to be the objective of one device with the whole batch under DDP.

* :func:`rank_noise_generator`: the Trainer seeds every rank alike, so the global RNG would hand each rank the
  same noise (R3F's noise, SMART's noise init, FreeLB's δ₀). Each rank draws from its own generator, re-seeded
  from (seed, rank, optimiser step) at every step: fairseq's rule (seed + update number), so a resumed run
  draws what an uninterrupted one would. One process keeps the global RNG (single-device values unchanged).
* :func:`ddp_loss_scale`: a loss normalised by the step's items counted over **all** ranks
  (``average_tokens_across_devices``) must be multiplied by the number of processes, because DDP averages the
  ranks' gradients; the stock ``Trainer.compute_loss`` does the same.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ddp_loss_scale", "rank_noise_generator"]


def rank_noise_generator(trainer: Any, device: torch.device) -> torch.Generator | None:
    """Under DDP, this rank's noise generator for the current optimiser step (cached on ``trainer``); else None."""
    if trainer.args.world_size <= 1:
        return None
    step = trainer.state.global_step
    cached = getattr(trainer, "_noise_generator", None)
    if cached is None or cached[0] != step:
        import numpy as np

        entropy = [trainer.args.seed, trainer.args.process_index, step]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)
        cached = (step, torch.Generator(device=device).manual_seed(seed))
        trainer._noise_generator = cached
    return cached[1]


def ddp_loss_scale(trainer: Any, normalised_by_step_items: bool) -> int:
    """``num_processes`` when the loss was divided by ``num_items_in_batch`` counted across devices, else 1."""
    if normalised_by_step_items and getattr(trainer.args, "average_tokens_across_devices", False):
        return int(trainer.accelerator.num_processes)
    return 1
