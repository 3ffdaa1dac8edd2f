"""The R3F objective, as pure tensor functions (no transformers import).

Paper (Aghajanyan et al., ICLR 2021, eq. 1): ``L_R3F = L(θ) + λ · KL_S(g·f(x) ‖ g·f(x + z))`` with
``KL_S(P, Q) = KL(P‖Q) + KL(Q‖P)`` and ``z ~ U(-ε, ε)`` or ``N(0, ε²)`` added to the input token embeddings.

The reductions follow the official implementation (fairseq ``examples/rxf``), which is what the paper's
numbers come from:

* ``symmetric_kl``: both KL directions in float32, each summed over every element, the total divided by the
  size of dim 0 (the batch). Neither side is detached.
* classification (``sentence_prediction_r3f``): ``(CE_sum + λ · symm_kl · B) / B`` = mean cross-entropy
  + λ · mean per-example symmetric KL. Regression heads: MSE only, the KL is computed but not added.
* seq2seq (``label_smoothed_cross_entropy_r3f``): ``(LS_sum + λ · symm_kl · ntokens) / ntokens`` =
  per-token label-smoothed CE + λ · per-sequence KL, where the KL is summed over all decoder positions,
  padding included.
* causal LMs (beyond the paper: decoder-only SFT, :func:`r3f_causal_lm_loss`): the seq2seq criterion on the
  next-token distributions, the KL summed over the positions that carry loss (labels != -100: prompt and
  padding tokens excluded, as ``SFTTrainer``'s completion masks say), chunked over positions.

Deviations are named options, off by default: ``padding_mask`` in :func:`symmetric_kl` and
``kl_reduction="per_token"`` in :func:`r3f_seq2seq_loss` (KL over real target tokens only, per token).

With gradient accumulation, fairseq divides the summed loss of all micro-batches by the summed sample size.
Pass that total as ``num_items`` (the Trainer's ``num_items_in_batch``) to get exactly that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from r3f_utils.constants import NOISE_TYPES  # the one list (torch-free, shared with r3f_utils.params)

NEFTUNE_LENGTHS = ("real", "padded")
SEQ2SEQ_KL_REDUCTIONS = ("per_sequence", "per_token")
PASS_MODES = ("separate", "concat")
SEQ2SEQ_KL_BATCHES = ("step", "micro_batch")


@dataclass(frozen=True)
class R3FConfig:
    """Hyper-parameters of R3F.

    Args:
        eps: noise scale: the half-width of U(-eps, eps), or the standard deviation of N(0, eps). fairseq: 1e-5.
        r3f_lambda: weight λ of the symmetric-KL term. fairseq: 1.0 (the RTE example uses 0.7).
        noise_type: ``"uniform"`` (fairseq's default for classification) or ``"normal"`` (its default for
            summarization): the paper's method. ``"none"``: what the released fairseq code executes for
            RoBERTa/XLM-R (its encoder drops the ``token_embeddings`` argument, so the "noised" pass is a second
            clean pass with fresh dropout masks and the symmetric KL is a dropout-consistency term); ``eps`` is
            then unused.
        seq2seq_kl: ``"per_sequence"`` (official: KL summed over all decoder positions incl. padding, / B) or
            ``"per_token"`` (deviation: padding masked, divided by the number of target tokens).
        seq2seq_kl_batch: with ``seq2seq_kl="per_sequence"``, what the KL is averaged over when one optimiser
            step spans several micro-batches (gradient accumulation) or ranks (DDP): ``"step"`` (default) all
            sequences of the step, the objective of one device with the whole batch; ``"micro_batch"`` each
            micro-batch's own sequences, weighted by its share of the step's target tokens, as fairseq does
            under ``--update-freq`` and multi-GPU training. Identical for one device without accumulation.
        pass_mode: ``"separate"`` runs the clean and the noised copy as two forward calls, ``"concat"`` as one
            doubled batch. Both give the same objective (independent dropout masks, same detach rules, same
            KL). On 2 CPU cores ``separate`` measured 2-4% faster (``benchmarks/step_time.py``), so it is the
            default; ``concat`` can pay off where bigger batches use the device better (GPUs).
        neftune_alpha: with ``noise_type="neftune"`` (beyond the paper: NEFTune's noise, Jain et al. 2023), the
            noise is U(-a, a) with ``a = neftune_alpha / sqrt(L * d)`` (d the embedding width); ``eps`` is then
            unused. NEFTune's paper: alpha 5, 10 or 15.
        neftune_length: what ``L`` is: ``"real"`` (default; NEFTune's Algorithm 1, as its authors' training
            script applies it to padded batches) each sequence's own number of tokens from the attention mask,
            padding left clean; ``"padded"`` the padded batch length, every position noised, as the
            ``neftune_noise_alpha`` hook of transformers/TRL (and the authors' drop-in ``NEFTune()``) does.
        kl_chunk_size: causal-LM objective: positions per chunk of the log-softmax/KL computation (each chunk is
            recomputed in the backward pass, so its float32 working set is not kept; see
            :func:`r3f_causal_lm_loss` for the peak memory).
        with_trainer_neftune: the trainers refuse R3F together with ``neftune_noise_alpha`` (NEFTune's hook then
            noises both passes, the "clean" one too); ``True`` asks for exactly that combination by name. For
            "NEFTune noise + R3F KL" (clean pass clean) use ``noise_type="neftune"`` instead.
    """

    eps: float = 1e-5
    r3f_lambda: float = 1.0
    noise_type: str = "uniform"
    seq2seq_kl: str = "per_sequence"
    pass_mode: str = "separate"
    seq2seq_kl_batch: str = "step"
    neftune_alpha: float = 5.0
    neftune_length: str = "real"
    kl_chunk_size: int = 256
    with_trainer_neftune: bool = False

    def __post_init__(self) -> None:
        for name in ("eps", "r3f_lambda", "neftune_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(
                    f"R3FConfig.{name} must be a finite number, got {value!r} ({type(value).__name__}); "
                    "in YAML write 1.0e-5, not 1e-5 (PyYAML reads the latter as a string)"
                )
        if self.eps <= 0:
            raise ValueError(f"R3FConfig.eps must be > 0, got {self.eps!r} (the paper and fairseq use 1e-5)")
        if self.r3f_lambda < 0:
            raise ValueError(f"R3FConfig.r3f_lambda must be >= 0, got {self.r3f_lambda!r} (the paper searched 0.1-5.0)")
        if self.neftune_alpha <= 0:
            raise ValueError(f"R3FConfig.neftune_alpha must be > 0, got {self.neftune_alpha!r} (NEFTune: 5, 10, 15)")
        if isinstance(self.kl_chunk_size, bool) or not isinstance(self.kl_chunk_size, int) or self.kl_chunk_size < 1:
            raise ValueError(f"R3FConfig.kl_chunk_size must be a positive integer, got {self.kl_chunk_size!r}")
        if not isinstance(self.with_trainer_neftune, bool):
            raise ValueError(f"R3FConfig.with_trainer_neftune must be True or False, got {self.with_trainer_neftune!r}")
        for name, allowed in (("noise_type", NOISE_TYPES), ("seq2seq_kl", SEQ2SEQ_KL_REDUCTIONS),
                              ("pass_mode", PASS_MODES), ("seq2seq_kl_batch", SEQ2SEQ_KL_BATCHES),
                              ("neftune_length", NEFTUNE_LENGTHS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"R3FConfig.{name} must be one of {', '.join(map(repr, allowed))}; "
                                 f"got {getattr(self, name)!r}")


class R3FLoss(NamedTuple):
    """The total loss to back-propagate, its task part (CE/MSE) and the symmetric KL (per example/sequence)."""

    loss: torch.Tensor
    task_loss: torch.Tensor
    symm_kl: torch.Tensor


def symmetric_kl(
    noised_logits: torch.Tensor, clean_logits: torch.Tensor, padding_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(clean‖noised) + KL(noised‖clean) over the last dim, summed over all other elements, divided by dim 0.

    Computed in float32; neither input is detached. ``padding_mask`` (deviation from the official code, which
    sums padding positions too) has the shape of the logits without the last dim and is True where a position
    is padding: those positions are left out of the sum (the divisor stays the batch size).

    Raises ValueError for logits of two shapes, integer logits, an empty batch, and NaN/inf in the logits (that
    check costs one device sync; the R3F losses skip it: in training the Trainer's loss guard stops the run at a
    non-finite loss with :class:`r3f_utils.methods.guards.NonFiniteLossError`, naming the step).
    """
    value = _symmetric_kl(noised_logits, clean_logits, padding_mask)
    if not bool(torch.isfinite(value)):
        bad = [name for name, x in (("noised_logits", noised_logits), ("clean_logits", clean_logits))
               if not bool(torch.isfinite(x).all())]
        raise ValueError(f"symmetric_kl: {' and '.join(bad) or 'the logits'} contain NaN or inf"
                         + ("" if bad else " (the KL overflowed)")
                         + ": the model diverged or its inputs are broken; the KL of non-finite logits is undefined")
    return value


def _symmetric_kl(
    noised_logits: torch.Tensor, clean_logits: torch.Tensor, padding_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`symmetric_kl` without the (device-syncing) check for NaN/inf."""
    if noised_logits.shape != clean_logits.shape:
        raise ValueError(f"symmetric_kl needs logits of one shape, got {tuple(noised_logits.shape)} and "
                         f"{tuple(clean_logits.shape)}")
    for name, x in (("noised_logits", noised_logits), ("clean_logits", clean_logits)):
        if not torch.is_floating_point(x):
            raise ValueError(f"symmetric_kl: {name} are {x.dtype}, not floating point: pass the model's logits "
                             "(scores before softmax), not predicted labels or token ids")
    if noised_logits.dim() == 0 or noised_logits.size(0) == 0 or noised_logits.numel() == 0:
        raise ValueError(f"symmetric_kl: empty logits (shape {tuple(noised_logits.shape)}): the KL needs a batch of "
                         "at least one example with at least one class (dim 0 is the batch, the last dim the classes)")
    noised_log_p = F.log_softmax(noised_logits, dim=-1, dtype=torch.float32)
    clean_log_p = F.log_softmax(clean_logits, dim=-1, dtype=torch.float32)
    # F.kl_div(log q, p) = Σ p (log p - log q) = KL(p‖q); the two calls are fairseq's _get_symm_kl
    pointwise = F.kl_div(noised_log_p, clean_log_p.exp(), reduction="none") + F.kl_div(
        clean_log_p, noised_log_p.exp(), reduction="none"
    )
    if padding_mask is not None:
        if padding_mask.shape != noised_logits.shape[:-1]:
            raise ValueError(f"padding_mask must have shape {tuple(noised_logits.shape[:-1])} (logits without the "
                             f"last dim), got {tuple(padding_mask.shape)}")
        pointwise = pointwise.masked_fill(padding_mask.bool().unsqueeze(-1), 0.0)
    return pointwise.sum() / noised_logits.size(0)


def r3f_classification_loss(
    clean_logits: torch.Tensor,
    noised_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    r3f_lambda: float,
    regression: bool = False,
    num_items: int | torch.Tensor | None = None,
) -> R3FLoss:
    """fairseq ``sentence_prediction_r3f``: mean CE (float32) on the clean logits + λ · mean symmetric KL.

    For a regression head (``regression=True``) the task loss is the MSE and, as in fairseq, the KL is
    returned for logging but not added. ``num_items`` is the number of examples the loss is normalised by
    (all micro-batches of one optimiser step under gradient accumulation); default: this batch's size.
    """
    batch = clean_logits.size(0)
    denominator = batch if num_items is None else num_items
    if regression:
        task_sum = F.mse_loss(clean_logits.view(-1).float(), labels.view(-1).float(), reduction="sum")
        with torch.no_grad():
            symm_kl = _symmetric_kl(noised_logits, clean_logits)
        return R3FLoss(task_sum / denominator, task_sum.detach() / batch, symm_kl)
    task_sum = F.cross_entropy(clean_logits.float(), labels.view(-1), reduction="sum")
    symm_kl = _symmetric_kl(noised_logits, clean_logits)
    loss = (task_sum + r3f_lambda * symm_kl * batch) / denominator
    return R3FLoss(loss, task_sum.detach() / batch, symm_kl.detach())


def label_smoothed_nll_sum(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float, ignore_index: int = -100
) -> torch.Tensor:
    """Label-smoothed NLL summed over non-ignored tokens: ``(1-ε)·nll + ε/V·Σ_v -log p_v`` (float32).

    This is fairseq's ``label_smoothed_nll_loss`` as of the paper (2020) and equals transformers'
    ``LabelSmoother`` before its division by the number of tokens.
    """
    log_p = F.log_softmax(logits, dim=-1, dtype=torch.float32)
    keep = labels.ne(ignore_index)
    target = labels.masked_fill(~keep, 0).unsqueeze(-1)
    nll = -log_p.gather(-1, target).squeeze(-1)
    smooth = -log_p.sum(-1)
    per_token = (1.0 - epsilon) * nll + (epsilon / log_p.size(-1)) * smooth
    return per_token.masked_fill(~keep, 0.0).sum()


def r3f_seq2seq_loss(
    clean_logits: torch.Tensor,
    noised_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    r3f_lambda: float,
    label_smoothing: float = 0.0,
    kl_reduction: Literal["per_sequence", "per_token"] = "per_sequence",
    ignore_index: int = -100,
    num_items: int | torch.Tensor | None = None,
    num_sequences: int | torch.Tensor | None = None,
) -> R3FLoss:
    """fairseq ``label_smoothed_cross_entropy_r3f``: per-token label-smoothed CE + λ · per-sequence KL.

    ``kl_reduction="per_sequence"`` (official) sums the KL over every decoder position, padding included, and
    divides by the batch size; ``"per_token"`` masks padding and divides by the number of target tokens.
    ``num_items`` is the number of target tokens the loss is normalised by (all micro-batches of one
    optimiser step under gradient accumulation); default: this batch's target tokens.
    ``num_sequences`` (per_sequence only) is the number of sequences of that whole step (all micro-batches,
    all ranks): the KL is then averaged over the step's sequences, so that the summed losses of the
    micro-batches / ranks equal the loss of one device with the whole batch. Without it the KL is weighted
    by this batch's tokens per sequence, as fairseq does per micro-batch under ``--update-freq`` or DDP.
    """
    if kl_reduction not in SEQ2SEQ_KL_REDUCTIONS:
        raise ValueError(f"kl_reduction must be one of {SEQ2SEQ_KL_REDUCTIONS}, got {kl_reduction!r}")
    task_sum = label_smoothed_nll_sum(clean_logits, labels, label_smoothing, ignore_index)
    # per_sequence: every decoder position, padding included (fairseq); per_token: real target tokens only
    padding = labels.eq(ignore_index) if kl_reduction == "per_token" else None
    kl_sum = _symmetric_kl(noised_logits, clean_logits, padding_mask=padding) * labels.size(0)
    return _seq2seq_join(task_sum, kl_sum, labels.size(0), labels.ne(ignore_index).sum(), r3f_lambda=r3f_lambda,
                         kl_reduction=kl_reduction, num_items=num_items, num_sequences=num_sequences)


def _seq2seq_join(
    task_sum: torch.Tensor,
    kl_sum: torch.Tensor,
    batch: int,
    ntokens: torch.Tensor,
    *,
    r3f_lambda: float,
    kl_reduction: str,
    num_items: int | torch.Tensor | None,
    num_sequences: int | torch.Tensor | None,
) -> R3FLoss:
    """How ``label_smoothed_cross_entropy_r3f`` joins the summed task loss and the summed KL (see
    :func:`r3f_seq2seq_loss`): per-token task loss + λ · per-sequence (or, ``per_token``, per-token) KL."""
    denominator = ntokens if num_items is None else num_items
    if kl_reduction == "per_sequence":
        symm_kl = kl_sum / batch
        # fairseq: loss + λ · symm_kl · sample_size (sample_size = ntokens); with num_sequences: Σ KL of this
        # batch / sequences of the step, scaled to the loss's common denominator
        kl_term = symm_kl * ntokens if num_sequences is None else kl_sum * (denominator / num_sequences)
    else:
        kl_term = kl_sum
        symm_kl = kl_sum / ntokens.clamp(min=1)
    loss = (task_sum + r3f_lambda * kl_term) / denominator
    return R3FLoss(loss, task_sum.detach() / ntokens.clamp(min=1), symm_kl.detach())


def _causal_chunk_sums(
    clean: torch.Tensor, noised: torch.Tensor, targets: torch.Tensor, label_smoothing: float, ignore_index: int
) -> torch.Tensor:
    """``[task_sum, kl_sum]`` of one chunk of positions (rows of ``(n, V)`` logits), in float32, autocast off."""
    with torch.autocast(clean.device.type, enabled=False):
        clean, noised = clean.float(), noised.float()
        task = label_smoothed_nll_sum(clean, targets, label_smoothing, ignore_index)
        keep = targets.ne(ignore_index)
        # rows of the chunk that carry no loss (prompt, padding) are left out: the same symmetric_kl, masked
        kl = _symmetric_kl(noised, clean, padding_mask=~keep) * keep.size(0)
    return torch.stack([task, kl])


def r3f_causal_lm_loss(
    clean_logits: torch.Tensor,
    noised_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    r3f_lambda: float,
    label_smoothing: float = 0.0,
    kl_reduction: Literal["per_sequence", "per_token"] = "per_sequence",
    ignore_index: int = -100,
    num_items: int | torch.Tensor | None = None,
    num_sequences: int | torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
    chunk_size: int = 256,
) -> R3FLoss:
    """R3F for decoder-only causal LMs: the seq2seq criterion (:func:`r3f_seq2seq_loss`) on next-token
    distributions, beyond the paper.

    Position ``t`` of the logits predicts ``labels[:, t + 1]`` (transformers' causal-LM convention; pass
    ``shift_labels`` instead when the collator already shifted them, e.g. padding-free batches). Only the
    positions that carry loss (target != ``ignore_index``: SFT's prompt and padding tokens are -100) enter the
    task loss and the symmetric KL. ``kl_reduction="per_sequence"`` (the official seq2seq reduction): KL summed
    over those positions, divided by the number of sequences, joined as ``λ · symm_kl · ntokens``, so the loss
    is per-token CE + λ · per-sequence KL; ``"per_token"``: the KL divided by the number of loss tokens. (fairseq
    also sums the KL over padded decoder positions; a causal LM's prompt and padding positions predict nothing
    the loss asks for, so they are left out.) ``num_items`` / ``num_sequences``: as in :func:`r3f_seq2seq_loss`.

    Memory: the positions are processed ``chunk_size`` at a time, each chunk under activation checkpointing, in
    float32 with autocast off (so bf16 logits get a float32 KL). Beyond the two logits tensors the model returns
    (``B x T x V`` each, in its dtype), the forward pass holds one chunk's working set, about
    ``8 x chunk_size x V x 4`` bytes (float32 log-softmax of both passes and of the CE, their exponentials and
    the pointwise KL): with a 128,256-token vocabulary (Llama 3) and the default 256 positions, ~1 GB at the
    peak, freed after the chunk; no float32 copy of the whole logits and no per-chunk tensor is kept for the
    backward pass (it recomputes the chunk). The backward pass holds the logits' gradients (one logits-sized
    tensor per pass, as any loss) plus, while the chunk gradients are joined, a second copy of them, and one
    chunk's working set. Measured (CPU, B x T = 512 positions, V = 128,256, float32 logits 0.49 GiB for both
    passes; peak above them): chunk 32: forward 0.18 GiB, forward + backward 1.27 GiB; chunk 256: 0.93 / 1.76
    GiB; unchunked (512): 1.79 / 2.95 GiB.
    """
    from torch.utils.checkpoint import checkpoint

    if kl_reduction not in SEQ2SEQ_KL_REDUCTIONS:
        raise ValueError(f"kl_reduction must be one of {SEQ2SEQ_KL_REDUCTIONS}, got {kl_reduction!r}")
    if clean_logits.shape != noised_logits.shape or clean_logits.dim() != 3:
        raise ValueError(f"r3f_causal_lm_loss needs two (batch, length, vocab) logits of one shape, got "
                         f"{tuple(clean_logits.shape)} and {tuple(noised_logits.shape)}")
    batch, length, vocab = clean_logits.shape
    if shift_labels is None:
        if labels.shape != (batch, length):
            raise ValueError(f"labels must have shape {(batch, length)} (the input_ids' shape), "
                             f"got {tuple(labels.shape)}")
        targets = torch.cat([labels[:, 1:], labels.new_full((batch, 1), ignore_index)], dim=1)
    else:
        if shift_labels.shape != (batch, length):
            raise ValueError(f"shift_labels must have shape {(batch, length)}, got {tuple(shift_labels.shape)}")
        targets = shift_labels
    targets = targets.reshape(-1)
    ntokens = targets.ne(ignore_index).sum()
    # views of the logits, split into chunks of positions: the split's backward assembles one gradient tensor
    pieces = zip(clean_logits.view(-1, vocab).split(chunk_size), noised_logits.view(-1, vocab).split(chunk_size),
                 targets.split(chunk_size), strict=True)
    # zero, but connected to both logits: a batch without loss tokens still back-propagates (a zero gradient)
    sums = (clean_logits.view(-1)[:1].float().sum() + noised_logits.view(-1)[:1].float().sum()) * 0.0
    sums = sums.expand(2)
    for clean, noised, target in pieces:
        if not bool(target.ne(ignore_index).any()):
            continue  # a chunk of prompt / padding only
        if torch.is_grad_enabled() and (clean.requires_grad or noised.requires_grad):
            sums = sums + checkpoint(_causal_chunk_sums, clean, noised, target, label_smoothing, ignore_index,
                                     use_reentrant=False)
        else:
            sums = sums + _causal_chunk_sums(clean, noised, target, label_smoothing, ignore_index)
    return _seq2seq_join(sums[0], sums[1], batch, ntokens, r3f_lambda=r3f_lambda, kl_reduction=kl_reduction,
                         num_items=num_items, num_sequences=num_sequences)
