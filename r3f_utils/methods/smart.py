"""SMART (Jiang et al., ACL 2020): smoothness-inducing adversarial regulariser + Bregman proximal point term.

``F(θ) = L(θ) + λ_s·R_s(θ) + μ·D_Breg(θ, θ̃)`` with ``R_s = mean_i max_{‖x̃_i − x_i‖ ≤ ε} ℓ_s(f(x̃_i), f(x_i))``
(``x`` the input embeddings; ``ℓ_s`` the symmetric KL for classification, the squared error for regression)
and ``D_Breg = mean_i ℓ_s(f(x_i; θ), f(x_i; θ̃))`` against a weight EMA ("mean teacher") θ̃.

Defaults follow the official code (namisan/mt-dnn, ``mt_dnn/perturbation.py``; see docs/baselines.md):
one ascent step (``adv_k 1``), Gaussian noise init with std 1e-5 (``adv_noise_var``), ∞-norm per token,
``adv_alpha`` λ_s = 1, regulariser ``KL(sg(p_adv)‖p) + KL(sg(p)‖p_adv)`` (each target detached, batch mean),
and **no Bregman term** (the official code has none: ``bregman_mu=0``; the paper's μ = 1 is one field away).
Named deviations and choices:

* ``ascent_rule``: ``"paper"`` (default: noise + η·g/‖g‖ per token, then projection onto the ε-ball, as the
  paper's Algorithm 1 is restated in mt-dnn #214) or ``"mtdnn"`` (the code: ``(noise + η·g)/‖noise + η·g‖``
  per token, which leaves every token's perturbation at norm ≈ 1 whatever η, σ, ε are).
* ``step_size`` η = 1e-3 (paper, secondary; mt-dnn's class default; its CLI default is 1e-5), ``epsilon``
  ε = 1e-5 (paper, secondary; None = no projection).
* ``site``: ``"word_embeddings"`` (default: the token-embedding lookup, where R3F and FreeLB perturb) or
  ``"embeddings_output"`` (mt-dnn until 2021: the output of the whole embedding block).
* The ascent maximises the exact ``KL(p_adv‖sg(p))`` (mt-dnn: its ``stable_kl`` surrogate of it).
* ``reg_detach="none"`` detaches neither side of the symmetric KL (R3F's ``symmetric_kl``).

Passes per step, as implemented: K + 2 forwards (clean, K ascent, final), K input-only gradient calls
(``torch.autograd.grad`` with respect to the noise) and 1 full backward; the Bregman term adds one no-grad
teacher forward. R3F's Table 1 prints FP = BP = 1 + S.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from r3f_utils.methods.ddp import ddp_loss_scale, rank_noise_generator
from r3f_utils.methods.guards import check_finite_loss
from r3f_utils.methods.heads import check_method_config, is_regression_head, loss_denominator
from r3f_utils.methods.noise import (
    EMBEDDING_SITES,
    check_perturbation_site,
    perturbed_input_embeddings,
    transformed_input_embeddings,
)
from r3f_utils.methods.r3f import symmetric_kl

__all__ = [
    "SMARTConfig",
    "SMARTLoss",
    "SMARTTrainer",
    "smart_adversarial_logits",
    "smart_ascent_step",
    "smart_loss",
    "smoothness_divergence",
]

ASCENT_RULES = ("paper", "mtdnn")
NORMS = ("inf", "l2")
REG_DETACH = ("targets", "none")
MTDNN_NORM_EPS = 1e-6  # mt-dnn's --adv_epsilon: only a denominator guard in its update rule


def _finite_number(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name} must be a finite number, got {value!r} ({type(value).__name__}); "
                         "in YAML write 1.0e-5, not 1e-5 (PyYAML reads the latter as a string)")


def _choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{owner}.{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


@dataclass(frozen=True)
class SMARTConfig:
    """Hyper-parameters of SMART (defaults: the official mt-dnn code, see the module docstring).

    Args:
        adv_lambda: λ_s, weight of the smoothness regulariser (mt-dnn ``adv_alpha`` 1; paper λ_s ∈ {1, 3, 5});
            0 switches it off (no ascent, no extra forwards).
        ascent_steps: K ≥ 1, gradient-ascent steps on the noise (mt-dnn ``adv_k`` 1; Table 1's S).
        step_size: η > 0 of the ascent step.
        noise_std: σ ≥ 0 of the Gaussian noise init (mt-dnn ``adv_noise_var``, used as a std).
        epsilon: radius of the projection of the ``paper`` rule (None: no projection).
        norm: ``"inf"`` (mt-dnn ``adv_p_norm``) or ``"l2"``; per token, over the hidden dimension.
        ascent_rule: ``"paper"`` or ``"mtdnn"``.
        site: ``"word_embeddings"`` or ``"embeddings_output"``.
        reg_detach: ``"targets"`` (mt-dnn ``SymKlCriterion``) or ``"none"``.
        bregman_mu: μ ≥ 0 of the Bregman proximal point term (paper 1, official code 0 = off).
        bregman_beta: EMA β of the teacher for the first ``bregman_warmup`` fraction of updates, then
            ``bregman_beta_late`` (paper, secondary: 0.99, 0.999, 10 %).
    """

    adv_lambda: float = 1.0
    ascent_steps: int = 1
    step_size: float = 1e-3
    noise_std: float = 1e-5
    epsilon: float | None = 1e-5
    norm: str = "inf"
    ascent_rule: str = "paper"
    site: str = "word_embeddings"
    reg_detach: str = "targets"
    bregman_mu: float = 0.0
    bregman_beta: float = 0.99
    bregman_beta_late: float = 0.999
    bregman_warmup: float = 0.1

    def __post_init__(self) -> None:
        owner = "SMARTConfig"
        for name in ("adv_lambda", "step_size", "noise_std", "bregman_mu", "bregman_beta", "bregman_beta_late",
                     "bregman_warmup"):
            _finite_number(owner, name, getattr(self, name))
        if isinstance(self.ascent_steps, bool) or not isinstance(self.ascent_steps, int) or self.ascent_steps < 1:
            raise ValueError(f"{owner}.ascent_steps must be an integer >= 1 (mt-dnn adv_k: 1), got "
                             f"{self.ascent_steps!r}")
        if self.step_size <= 0:
            raise ValueError(f"{owner}.step_size must be > 0 (paper 1e-3), got {self.step_size!r}")
        for name in ("adv_lambda", "noise_std", "bregman_mu"):
            if getattr(self, name) < 0:
                raise ValueError(f"{owner}.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.epsilon is not None:
            _finite_number(owner, "epsilon", self.epsilon)
            if self.epsilon <= 0:
                raise ValueError(f"{owner}.epsilon must be > 0 or None (no projection), got {self.epsilon!r}")
        for name in ("bregman_beta", "bregman_beta_late", "bregman_warmup"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{owner}.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name, allowed in (("norm", NORMS), ("ascent_rule", ASCENT_RULES), ("site", EMBEDDING_SITES),
                              ("reg_detach", REG_DETACH)):
            _choice(owner, name, getattr(self, name), allowed)


class SMARTLoss(NamedTuple):
    """Total loss to back-propagate, its task part, the smoothness term and the Bregman term (per example)."""

    loss: torch.Tensor
    task_loss: torch.Tensor
    smoothness: torch.Tensor
    bregman: torch.Tensor


def initial_noise(like: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """mt-dnn's init: N(0, 1)·std, float32, shape of ``like`` (padding positions included, as at HEAD).

    ``generator``: draw from it instead of the global RNG (the trainer gives each DDP rank its own).
    """
    return torch.randn(like.shape, device=like.device, dtype=torch.float32, generator=generator) * std


def _token_norm(x: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "inf":
        return x.abs().amax(dim=-1, keepdim=True)
    return x.norm(dim=-1, keepdim=True)


def smart_ascent_step(noise: torch.Tensor, grad: torch.Tensor, config: SMARTConfig) -> torch.Tensor:
    """One ascent step on the noise, per token over the hidden dimension (see ``SMARTConfig.ascent_rule``).

    A non-finite gradient (fp16 overflow) leaves the noise unchanged.
    """
    if not torch.isfinite(grad).all():
        return noise
    grad = grad.float()
    if config.ascent_rule == "mtdnn":
        moved = noise + config.step_size * grad
        return moved / (_token_norm(moved, config.norm) + MTDNN_NORM_EPS)
    moved = noise + config.step_size * grad / _token_norm(grad, config.norm).clamp_min(1e-12)
    if config.epsilon is None:
        return moved
    if config.norm == "inf":
        return moved.clamp(-config.epsilon, config.epsilon)
    return moved * (config.epsilon / _token_norm(moved, "l2").clamp_min(config.epsilon))


def ascent_divergence(adv_logits: torch.Tensor, clean_logits: torch.Tensor, regression: bool) -> torch.Tensor:
    """What the ascent maximises: ``KL(p_adv‖sg(p_clean))`` summed (float32), or the summed squared error."""
    target = clean_logits.detach().float()
    if regression:
        return F.mse_loss(adv_logits.float(), target, reduction="sum")
    return F.kl_div(F.log_softmax(target, -1), F.log_softmax(adv_logits.float(), -1), reduction="sum",
                    log_target=True)


def smoothness_divergence(adv_logits: torch.Tensor, clean_logits: torch.Tensor, *, regression: bool = False,
                          reg_detach: str = "targets") -> torch.Tensor:
    """ℓ_s averaged over the batch (dim 0), float32.

    Classification: ``KL(sg(p_adv)‖p) + KL(sg(p)‖p_adv)`` (``reg_detach="targets"``, mt-dnn) or the same with
    nothing detached (``"none"``, R3F's :func:`r3f_utils.symmetric_kl`). Regression: ``Σ (f − f_adv)² / B``
    (both stop-gradient directions of a squared error give its plain gradient).
    """
    _choice("smoothness_divergence", "reg_detach", reg_detach, REG_DETACH)
    batch = clean_logits.size(0)
    if regression:
        return (clean_logits.float() - adv_logits.float()).pow(2).sum() / batch
    if reg_detach == "none":
        return symmetric_kl(adv_logits, clean_logits)
    log_p, log_q = F.log_softmax(clean_logits.float(), -1), F.log_softmax(adv_logits.float(), -1)
    return (F.kl_div(log_p, log_q.detach(), reduction="sum", log_target=True)
            + F.kl_div(log_q, log_p.detach(), reduction="sum", log_target=True)) / batch


def smart_adversarial_logits(
    forward: Callable[[torch.Tensor], torch.Tensor], clean_logits: torch.Tensor, like: torch.Tensor,
    config: SMARTConfig, *, regression: bool = False, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The inner maximisation: K ascent steps on noise (shape of ``like``), then the logits at ``sg(noise)``.

    ``forward(noise)`` runs the model with ``noise`` added at the perturbation site and returns its logits;
    the initial noise is drawn from ``generator`` (default: the global RNG).
    """
    noise = initial_noise(like, config.noise_std, generator)
    for _ in range(config.ascent_steps):
        noise.requires_grad_(True)
        loss = ascent_divergence(forward(noise), clean_logits, regression)
        (grad,) = torch.autograd.grad(loss, noise)
        noise = smart_ascent_step(noise.detach(), grad, config)
    return forward(noise.detach())


def smart_loss(
    clean_logits: torch.Tensor, adv_logits: torch.Tensor | None, labels: torch.Tensor, config: SMARTConfig, *,
    regression: bool = False, teacher_logits: torch.Tensor | None = None, num_items: int | torch.Tensor | None = None,
) -> SMARTLoss:
    """``(task_sum + λ_s·B·R_s + μ·B·D_Breg) / num_items`` (default ``num_items``: the batch size).

    ``task_sum``: summed cross-entropy (float32) or squared error on the clean logits. ``adv_logits=None``
    or ``teacher_logits=None`` leave that term out.
    """
    batch = clean_logits.size(0)
    denominator = batch if num_items is None else num_items
    if regression:
        task_sum = F.mse_loss(clean_logits.view(-1).float(), labels.view(-1).float(), reduction="sum")
    else:
        task_sum = F.cross_entropy(clean_logits.float(), labels.view(-1), reduction="sum")
    zero = clean_logits.new_zeros((), dtype=torch.float32)
    smooth = zero if adv_logits is None else smoothness_divergence(
        adv_logits, clean_logits, regression=regression, reg_detach=config.reg_detach)
    bregman = zero if teacher_logits is None else smoothness_divergence(
        teacher_logits.detach(), clean_logits, regression=regression, reg_detach="none")
    total = task_sum + batch * (config.adv_lambda * smooth + config.bregman_mu * bregman)
    return SMARTLoss(total / denominator, task_sum.detach() / batch, smooth.detach(), bregman.detach())


def update_teacher(teacher: nn.Module, model: nn.Module, beta: float) -> None:
    """θ̃ ← β·θ̃ + (1 − β)·θ, parameter by parameter (buffers copied)."""
    with torch.no_grad():
        for t, p in zip(teacher.parameters(), model.parameters(), strict=True):
            t.mul_(beta).add_(p.detach().to(t.dtype), alpha=1 - beta)
        for t, b in zip(teacher.buffers(), model.buffers(), strict=True):
            t.copy_(b)


TEACHER_FILE = "smart_teacher.pt"  # the EMA teacher's weights, beside the Trainer's files in every checkpoint


class _TeacherCallback(TrainerCallback):
    def __init__(self, trainer: SMARTTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer._update_teacher(state.global_step, state.max_steps)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Write the teacher into the checkpoint just saved, so that a resumed run continues with it."""
        teacher = self.trainer._teacher
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if teacher is not None and folder.is_dir() and state.is_world_process_zero:
            state_dict = {k: v.detach().cpu().clone() for k, v in teacher.state_dict().items()}
            tmp = folder / f".{TEACHER_FILE}.tmp"
            torch.save(state_dict, tmp)
            os.replace(tmp, folder / TEACHER_FILE)


class SMARTTrainer(Trainer):
    """``transformers.Trainer`` with the SMART objective; ``smart=None`` is the plain Trainer.

    Example::

        trainer = SMARTTrainer(model=model, args=TrainingArguments("out"), smart=SMARTConfig(adv_lambda=3.0),
                               train_dataset=train, processing_class=tokenizer)

    Train mode only; eval and predict run one clean pass. Logs ``smart_reg`` (and ``bregman``) beside ``loss``.
    """

    def __init__(self, *args: Any, smart: SMARTConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_method_config(self, smart, SMARTConfig, "SMART", "smart")
        self.smart = smart
        self._teacher: nn.Module | None = None
        self._teacher_checkpoint: Path | None = None  # the checkpoint a resumed run reads the teacher from
        self._logged: dict[str, list[float]] = {"smart_reg": [], "bregman": []}
        if smart is None:
            # the plain Trainer: a mean CE from a **kwargs forward must not count as a sum over the step's items
            # (gradients x world size under DDP, not divided under accumulation); see R3FTrainer(r3f=None)
            self.model_accepts_loss_kwargs = False
            return
        check_perturbation_site(self.model, smart.site, "SMART")
        if smart.bregman_mu > 0:
            self.add_callback(_TeacherCallback(self))

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; a resumed run (``resume_from_checkpoint``) reloads the EMA teacher saved with it."""
        self._teacher = None
        self._teacher_checkpoint = None
        if resume_from_checkpoint and self.smart is not None and self.smart.bregman_mu > 0:
            path = (get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True
                    else resume_from_checkpoint)
            self._teacher_checkpoint = Path(path) if path else None
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _make_teacher(self, model: nn.Module) -> nn.Module:
        """θ̃: a frozen copy of the model, or the teacher saved with the checkpoint a resumed run starts from."""
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
        # the copy would inherit accelerate's autocast wrapper of the student's forward only when the student was
        # already prepared; drop it: compute_loss runs the teacher under the student's autocast explicitly
        teacher.__dict__.pop("forward", None)
        saved = None if self._teacher_checkpoint is None else self._teacher_checkpoint / TEACHER_FILE
        if saved is not None:
            if not saved.is_file():
                raise FileNotFoundError(f"{saved} is missing: the run resumes from {self._teacher_checkpoint}, but "
                                        "its SMART teacher was not saved with it (a checkpoint of an older version); "
                                        "restart the run, or set bregman_mu=0")
            teacher.load_state_dict(torch.load(saved, map_location="cpu", weights_only=True))
        return teacher

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None, **kwargs: Any
                     ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if self.smart is None or not model.training or "labels" not in inputs:
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                       num_items_in_batch=num_items_in_batch, **kwargs)
            if model.training:
                check_finite_loss(self.state.global_step + 1, out[0] if return_outputs else out)
            return out
        smart: SMARTConfig = self.smart
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        unwrapped = self.accelerator.unwrap_model(model)
        regression = is_regression_head(unwrapped, "SMART")
        seen: list[torch.Tensor] = []
        with transformed_input_embeddings(unwrapped, lambda e: seen.append(e.detach()), site=smart.site):
            outputs = model(**inputs)
        clean = outputs.logits
        # DDP allows one wrapped forward per backward (see R3FTrainer): the clean call prepared the reducer for
        # every parameter, the ascent and adversarial passes run the wrapped module directly
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        adv = None
        if smart.adv_lambda > 0:
            def forward(noise: torch.Tensor) -> torch.Tensor:
                with perturbed_input_embeddings(unwrapped, noise, site=smart.site):
                    return inner(**inputs).logits

            adv = smart_adversarial_logits(forward, clean, seen[0], smart, regression=regression,
                                           generator=rank_noise_generator(self, labels.device))
        teacher_logits = None
        if smart.bregman_mu > 0:
            if self._teacher is None:
                self._teacher = self._make_teacher(unwrapped)
            with torch.no_grad(), self.accelerator.autocast():  # the student's mixed precision
                teacher_logits = self._teacher(**inputs).logits
        num_items = loss_denominator(self, num_items_in_batch)
        result = smart_loss(clean, adv, labels, smart, regression=regression, teacher_logits=teacher_logits,
                            num_items=num_items)
        check_finite_loss(self.state.global_step + 1, result.loss, task_loss=result.task_loss,
                          smart_reg=result.smoothness, bregman=result.bregman)
        scale = ddp_loss_scale(self, num_items is not None)  # DDP averages ranks; num_items counts all of them
        if scale != 1:
            result = result._replace(loss=result.loss * scale)
        self._logged["smart_reg"].append(float(result.smoothness))
        self._logged["bregman"].append(float(result.bregman))
        return (result.loss, outputs) if return_outputs else result.loss

    def _update_teacher(self, step: int, max_steps: int) -> None:
        if self._teacher is None or self.smart is None:
            return
        late = max_steps > 0 and step > self.smart.bregman_warmup * max_steps
        beta = self.smart.bregman_beta_late if late else self.smart.bregman_beta
        update_teacher(self._teacher, self.accelerator.unwrap_model(self.model), beta)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the interval's mean smoothness (and Bregman) term to the training logs."""
        if "loss" in logs and self._logged["smart_reg"]:
            extra = {k: round(sum(v) / len(v), 6) for k, v in self._logged.items() if v}
            if self.smart is not None and self.smart.bregman_mu == 0:
                extra.pop("bregman", None)
            logs = {**logs, **extra}
            self._logged = {k: [] for k in self._logged}
        super().log(logs, *args, **kwargs)
