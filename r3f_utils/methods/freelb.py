"""FreeLB (Zhu et al., ICLR 2020): K ascent steps on an embedding perturbation, parameter gradients
accumulated over all 1 + K passes, one optimiser step.

Semantics of the official code (zhuchen03/FreeLB, ``fairseq-RoBERTa/fairseq/tasks/sentence_prediction.py``,
``freelb_train_step``; see docs/baselines.md):

* δ is added to the token-embedding lookup (the site of R3F's noise), which is not detached.
* init (``norm="l2"``): ``δ₀ = U(−1, 1) ⊙ mask · init_mag / √(L·d)`` (L the example's length, d the width);
  ``"linf"``: ``δ₀ = U(−init_mag, init_mag) ⊙ mask``.
* pass t = 0..K: forward at δ_t, ``loss/(1+K)`` back-propagated (parameter gradients accumulate); between
  passes ``δ ← δ + α·g/‖g‖`` per example (l2: Frobenius norm over T×d; linf: max-abs), then l2: rescaled onto
  the ``max_norm`` sphere where it is outside, linf: clamped to ±``max_norm``.
* dropout masks are shared by the 1 + K passes ("syncdp" in every launch script): ``shared_dropout=True``
  replays the RNG state of pass 0 (CPU and CUDA) before every later pass; ``False`` redraws them (the HF
  ALBERT port's embedding dropout, third-party ports).

Defaults: the published SST-2 RoBERTa-large recipe (``launch/FreeLB/sst``): K = 2, α = 0.1, init_mag 1,
max_norm 0.6, l2 (the code's own defaults switch FreeLB off). Passes per step: 1 + K forwards and 1 + K full
backwards, R3F Table 1's 1 + S.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer

from r3f_utils.methods.ddp import ddp_loss_scale, rank_noise_generator
from r3f_utils.methods.guards import check_finite_loss
from r3f_utils.methods.heads import check_method_config, is_regression_head, loss_denominator
from r3f_utils.methods.noise import check_perturbation_site, perturbation_module, perturbed_input_embeddings

__all__ = ["FreeLBConfig", "FreeLBTrainer", "freelb_ascent_step", "freelb_initial_delta", "task_loss_sum"]

NORMS = ("l2", "linf")


@dataclass(frozen=True)
class FreeLBConfig:
    """Hyper-parameters of FreeLB (defaults: the official SST-2 RoBERTa-large launch script).

    Args:
        ascent_steps: K ≥ 1 ascent steps (fairseq ``--adv-steps``; 1 + K passes per step; Table 1's S; the name
            SMARTConfig uses for the same concept).
        adv_lr: α > 0, the ascent step (``--adv-lr``).
        init_mag: ≥ 0, magnitude of the random init (``--rand-init-mag``; 0: the first pass is clean).
        max_norm: > 0 bound on δ (``--max-norm``), or None for none.
        norm: ``"l2"`` (``--norm-method`` default) or ``"linf"``.
        shared_dropout: one set of dropout masks for all passes (official) or fresh ones per pass.
    """

    ascent_steps: int = 2
    adv_lr: float = 0.1
    init_mag: float = 1.0
    max_norm: float | None = 0.6
    norm: str = "l2"
    shared_dropout: bool = True

    def __post_init__(self) -> None:
        owner = "FreeLBConfig"
        if isinstance(self.ascent_steps, bool) or not isinstance(self.ascent_steps, int) or self.ascent_steps < 1:
            raise ValueError(f"{owner}.ascent_steps must be an integer >= 1 (the published scripts use 2 or 3), "
                             f"got {self.ascent_steps!r}")
        for name in ("adv_lr", "init_mag", *(("max_norm",) if self.max_norm is not None else ())):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{owner}.{name} must be a finite number, got {value!r} ({type(value).__name__}); "
                                 "in YAML write 1.0e-1, not 1e-1 (PyYAML reads the latter as a string)")
        if self.adv_lr <= 0:
            raise ValueError(f"{owner}.adv_lr must be > 0 (published 2.5e-2 to 2e-1), got {self.adv_lr!r}")
        if self.init_mag < 0:
            raise ValueError(f"{owner}.init_mag must be >= 0, got {self.init_mag!r}")
        if self.max_norm is not None and self.max_norm <= 0:
            raise ValueError(f"{owner}.max_norm must be > 0 or None (no bound), got {self.max_norm!r}")
        if self.norm not in NORMS:
            raise ValueError(f"{owner}.norm must be one of {', '.join(map(repr, NORMS))}; got {self.norm!r}")
        if not isinstance(self.shared_dropout, bool):
            raise ValueError(f"{owner}.shared_dropout must be True or False, got {self.shared_dropout!r}")


def freelb_initial_delta(mask: torch.Tensor, dim: int, config: FreeLBConfig,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """δ₀ of shape ``mask.shape + (dim,)`` (float32): zero at padding (``mask`` 0), see the module docstring.

    ``generator``: draw from it instead of the global RNG (the trainer gives each DDP rank its own).
    """
    mask = mask.float().unsqueeze(-1)
    noise = torch.empty(*mask.shape[:-1], dim, device=mask.device).uniform_(-1, 1, generator=generator) * mask
    if config.norm == "linf":
        return noise * config.init_mag
    lengths = mask.sum(dim=(1, 2)).clamp_min(1).view(-1, 1, 1)
    return noise * config.init_mag / torch.sqrt(lengths * dim)


def _per_example(x: torch.Tensor, norm: str) -> torch.Tensor:
    flat = x.reshape(x.size(0), -1)
    value = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    return value.view(-1, *([1] * (x.dim() - 1)))


def freelb_ascent_step(delta: torch.Tensor, grad: torch.Tensor, config: FreeLBConfig) -> torch.Tensor:
    """``δ + α·g/‖g‖`` per example, then the ``max_norm`` bound; a non-finite ``g`` leaves δ unchanged."""
    if not torch.isfinite(grad).all():
        return delta
    grad = grad.float()
    moved = delta + config.adv_lr * grad / _per_example(grad, config.norm).clamp_min(1e-10)
    if config.max_norm is None:
        return moved
    if config.norm == "linf":
        return moved.clamp(-config.max_norm, config.max_norm)
    norms = _per_example(moved, "l2")
    return torch.where(norms > config.max_norm, moved * (config.max_norm / norms.clamp_min(1e-12)), moved)


def task_loss_sum(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Summed cross-entropy (float32), or summed squared error for a regression head."""
    if regression:
        return F.mse_loss(logits.view(-1).float(), labels.view(-1).float(), reduction="sum")
    return F.cross_entropy(logits.float(), labels.view(-1), reduction="sum")


@contextmanager
def replayed_rng(enabled: bool, device: torch.device) -> Iterator[Any]:
    """Yield ``replay()``: restores the CPU (and CUDA) RNG state saved on entry, so dropout redraws the same masks."""
    cuda = device.type == "cuda" and torch.cuda.is_available()
    cpu_state = torch.get_rng_state() if enabled else None
    cuda_state = torch.cuda.get_rng_state(device) if enabled and cuda else None

    def replay() -> None:
        if cpu_state is not None:
            torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, device)

    yield replay


class FreeLBTrainer(Trainer):
    """``transformers.Trainer`` running FreeLB's 1 + K passes in ``training_step``; ``freelb=None`` is the plain
    Trainer. Gradient accumulation, clipping (once per optimiser step), the optimiser and the scheduler are the
    Trainer's. Eval and predict run one clean pass.

    Example::

        trainer = FreeLBTrainer(model=model, args=TrainingArguments("out"), freelb=FreeLBConfig(ascent_steps=3),
                                train_dataset=train, processing_class=tokenizer)
    """

    def __init__(self, *args: Any, freelb: FreeLBConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_method_config(self, freelb, FreeLBConfig, "FreeLB", "freelb")
        self.freelb = freelb
        self._delta_norms: list[float] = []
        if freelb is None:
            self.model_accepts_loss_kwargs = False  # the plain Trainer on a mean loss (see R3FTrainer(r3f=None))
            return
        check_perturbation_site(self.model, "word_embeddings", "FreeLB")

    def training_step(self, model: nn.Module, inputs: dict[str, Any],
                      num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
        if self.freelb is None or "labels" not in inputs:
            return super().training_step(model, inputs, num_items_in_batch)
        cfg: FreeLBConfig = self.freelb
        model.train()
        if callable(getattr(self.optimizer, "train", None)):
            self.optimizer.train()
        inputs = dict(self._prepare_inputs(inputs))
        labels = inputs.pop("labels")
        unwrapped = self.accelerator.unwrap_model(model)
        regression = is_regression_head(unwrapped, "FreeLB")
        denominator = loss_denominator(self, num_items_in_batch)
        scale = 1.0 if denominator is not None else 1.0 / self.current_gradient_accumulation_steps
        scale *= ddp_loss_scale(self, denominator is not None)  # DDP averages ranks; num_items counts all of them
        denominator = labels.size(0) if denominator is None else denominator
        ids = inputs.get("input_ids")
        if ids is None:
            raise ValueError("FreeLB needs input_ids in the batch (it perturbs the token-embedding lookup)")
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        embeddings, _, _ = perturbation_module(unwrapped, "word_embeddings")
        dim = getattr(embeddings, "embedding_dim", None) or embeddings.weight.shape[-1]
        # drawn before the RNG state is saved; under DDP from this rank's own generator
        delta = freelb_initial_delta(mask, dim, cfg, rank_noise_generator(self, labels.device))
        total = torch.zeros((), device=labels.device)
        with replayed_rng(cfg.shared_dropout, labels.device) as replay:
            for step in range(cfg.ascent_steps + 1):
                if step:
                    replay()
                delta.requires_grad_(True)
                with self.compute_loss_context_manager(), perturbed_input_embeddings(unwrapped, delta):
                    logits = model(**inputs).logits
                loss = task_loss_sum(logits, labels, regression) / denominator * (scale / (cfg.ascent_steps + 1))
                check_finite_loss(self.state.global_step + 1, loss, ascent_pass=step)
                self.accelerator.backward(loss)
                total += loss.detach()
                if step < cfg.ascent_steps:
                    delta = freelb_ascent_step(delta.detach(), delta.grad, cfg)
        self._delta_norms.append(float(_per_example(delta.detach(), "l2").mean()))
        return total

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the interval's mean final ‖δ‖ (per example, l2) to the training logs as ``delta_norm``."""
        if "loss" in logs and self._delta_norms:
            logs = {**logs, "delta_norm": round(sum(self._delta_norms) / len(self._delta_norms), 6)}
            self._delta_norms = []
        super().log(logs, *args, **kwargs)
