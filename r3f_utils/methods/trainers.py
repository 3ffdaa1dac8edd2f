"""Trainer integration: ``R3FTrainer`` and ``R3FSeq2SeqTrainer`` override ``compute_loss`` only.

Use them exactly like ``Trainer`` / ``Seq2SeqTrainer``, plus ``r3f=R3FConfig(...)``. In train mode a step
runs the clean and the noised forward pass (two calls, or one doubled batch) and one backward pass; eval and
predict run one clean pass, no noise. ``r3f=None`` leaves the parent's behaviour untouched (standard
fine-tuning). The mean symmetric KL of the logging interval is logged as ``symm_kl`` beside ``loss``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Seq2SeqTrainer, Trainer

from r3f_utils.methods.ddp import rank_noise_generator
from r3f_utils.methods.guards import check_finite_loss
from r3f_utils.methods.heads import check_method_config, is_regression_head, loss_denominator
from r3f_utils.methods.noise import noised_input_embeddings
from r3f_utils.methods.r3f import (
    R3FConfig,
    R3FLoss,
    r3f_causal_lm_loss,
    r3f_classification_loss,
    r3f_seq2seq_loss,
)


def _double(inputs: dict[str, Any], batch: int) -> dict[str, Any]:
    """Every tensor with the batch as dim 0, repeated twice along it (clean copy first, noised copy second)."""
    return {k: torch.cat([v, v]) if isinstance(v, torch.Tensor) and v.dim() > 0 and v.size(0) == batch else v
            for k, v in inputs.items()}


class R3FLossMixin:
    """The R3F ``compute_loss`` shared by both trainers; ``_r3f_objective`` says which objective applies."""

    _r3f_objective: str = "classification"

    def _setup_r3f(self, r3f: R3FConfig | None) -> None:
        check_method_config(self, r3f, R3FConfig, "R3F", "r3f")
        self.r3f = r3f
        self._symm_kl_sum = 0.0
        self._symm_kl_count = 0
        self._step_sequences: torch.Tensor | None = None  # sequences of the current optimiser step, all ranks
        self._noise_generator: tuple[int, torch.Generator] | None = None  # (global step, this rank's generator)
        if r3f is None:
            if self._r3f_objective == "classification":
                # Standard path. RoBERTa-style heads return the batch's *mean* CE/MSE and ignore num_items_in_batch,
                # but their forward takes **kwargs, so the Trainer would treat that mean as a sum / the step's
                # items: x world size under DDP, not divided under accumulation. Declared as a per-batch mean, the
                # Trainer divides by the accumulation steps and DDP averages the ranks: the whole batch's mean.
                self.model_accepts_loss_kwargs = False
            return

    def get_batch_samples(self, *args: Any, **kwargs: Any) -> tuple[list, Any]:
        """The parent's micro-batches of one optimiser step; for seq2seq R3F also count their sequences.

        DDP / gradient accumulation: ``num_items_in_batch`` counts the step's target tokens over all ranks, but
        the per-sequence KL needs the step's number of sequences too, or each rank would weight its KL by its
        own tokens per sequence and the summed gradient would differ from one device with the whole batch.
        """
        batch_samples, num_items = super().get_batch_samples(*args, **kwargs)  # type: ignore[misc]
        if self.r3f is not None and self._r3f_objective != "classification" and self.r3f.seq2seq_kl_batch == "step":
            count = sum(b["labels"].size(0) for b in batch_samples if "labels" in b)
            sequences = torch.tensor(count, device=self.args.device)  # type: ignore[attr-defined]
            if self.args.average_tokens_across_devices and self.args.world_size > 1:  # type: ignore[attr-defined]
                sequences = self.accelerator.gather(sequences).sum()  # type: ignore[attr-defined]
            self._step_sequences = sequences
        return batch_samples, num_items

    def _rank_noise_generator(self, device: torch.device) -> torch.Generator | None:
        """Under DDP, this rank's own noise generator, re-seeded from (seed, rank, step) every optimiser step.

        The Trainer seeds every rank alike, so the global RNG would hand each rank the same noise; fairseq's
        rule (seed + update number) makes a resumed run draw what an uninterrupted one would. One process keeps
        the global RNG, so single-device values are unchanged.
        """
        return rank_noise_generator(self, device)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs: Any,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if self.r3f is None or not model.training or "labels" not in inputs:
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,  # type: ignore[misc]
                                       num_items_in_batch=num_items_in_batch, **kwargs)
            if model.training:
                check_finite_loss(self.state.global_step + 1, out[0] if return_outputs else out)  # type: ignore[attr-defined]
            return out
        result, outputs = self._r3f_loss(model, inputs, num_items_in_batch)
        check_finite_loss(self.state.global_step + 1, result.loss,  # type: ignore[attr-defined]
                          task_loss=result.task_loss, symm_kl=result.symm_kl)
        self._symm_kl_sum += float(result.symm_kl)
        self._symm_kl_count += 1
        return (result.loss, outputs) if return_outputs else result.loss

    def _r3f_loss(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any) -> tuple[R3FLoss, Any]:
        r3f: R3FConfig = self.r3f  # type: ignore[assignment]
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        unwrapped = self.accelerator.unwrap_model(model)  # type: ignore[attr-defined]
        seq2seq = self._r3f_objective != "classification"  # causal_lm: the seq2seq criterion on next tokens
        shift_labels = inputs.pop("shift_labels", None) if self._r3f_objective == "causal_lm" else None
        if self._r3f_objective == "seq2seq" and "decoder_input_ids" not in inputs:
            inputs["decoder_input_ids"] = unwrapped.prepare_decoder_input_ids_from_labels(labels=labels)
        # fairseq detaches the noised embeddings for classification, not for seq2seq
        noise = {"eps": r3f.eps, "noise_type": r3f.noise_type, "detach": not seq2seq,
                 "generator": self._rank_noise_generator(labels.device),  # independent noise per DDP rank
                 "neftune_alpha": r3f.neftune_alpha,
                 "attention_mask": inputs.get("attention_mask") if r3f.neftune_length == "real" else None}
        batch = labels.size(0)
        if r3f.pass_mode == "concat":
            with noised_input_embeddings(unwrapped, rows=slice(batch, None), **noise):
                outputs = model(**_double(inputs, batch))
            clean_logits, noised_logits = outputs.logits[:batch], outputs.logits[batch:]
        else:
            outputs = model(**inputs)
            # DDP allows one wrapped forward per backward: a second one re-prepares its reducer from the noised
            # graph, where the detached embedding looks unused, and backward then marks it ready twice. The clean
            # call prepared the reducer for every parameter, so the noised pass runs the wrapped module directly.
            inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
            with noised_input_embeddings(unwrapped, **noise):
                noised_logits = inner(**inputs).logits
            clean_logits = outputs.logits
        # normalise by num_items_in_batch exactly when the Trainer will not divide by the accumulation steps
        num_items = loss_denominator(self, num_items_in_batch)
        scaled = num_items is not None
        if self._r3f_objective == "causal_lm":
            step_sequences = self._step_sequences if scaled and r3f.seq2seq_kl_batch == "step" else None
            result = r3f_causal_lm_loss(
                clean_logits, noised_logits, labels, r3f_lambda=r3f.r3f_lambda,
                label_smoothing=self.args.label_smoothing_factor,  # type: ignore[attr-defined]
                kl_reduction=r3f.seq2seq_kl, num_items=num_items,  # type: ignore[arg-type]
                num_sequences=step_sequences, shift_labels=shift_labels, chunk_size=r3f.kl_chunk_size,
            )
        elif seq2seq:
            # DDP / accumulation: average the per-sequence KL over the whole step's sequences (see get_batch_samples)
            step_sequences = self._step_sequences if scaled and r3f.seq2seq_kl_batch == "step" else None
            result = r3f_seq2seq_loss(
                clean_logits, noised_logits, labels, r3f_lambda=r3f.r3f_lambda,
                label_smoothing=self.args.label_smoothing_factor,  # type: ignore[attr-defined]
                kl_reduction=r3f.seq2seq_kl, num_items=num_items,  # type: ignore[arg-type]
                num_sequences=step_sequences,
            )
        else:
            regression = is_regression_head(unwrapped, "R3F")
            result = r3f_classification_loss(clean_logits, noised_logits, labels, r3f_lambda=r3f.r3f_lambda,
                                             regression=regression, num_items=num_items)
        if scaled and getattr(self.args, "average_tokens_across_devices", False):  # type: ignore[attr-defined]
            result = result._replace(loss=result.loss * self.accelerator.num_processes)  # type: ignore[attr-defined]
        return result, outputs

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the interval's mean symmetric KL to the training logs as ``symm_kl``."""
        if "loss" in logs and self._symm_kl_count:
            logs = {**logs, "symm_kl": round(self._symm_kl_sum / self._symm_kl_count, 6)}
            self._symm_kl_sum, self._symm_kl_count = 0.0, 0
        super().log(logs, *args, **kwargs)  # type: ignore[misc]


class R3FTrainer(R3FLossMixin, Trainer):
    """``transformers.Trainer`` with the R3F classification objective (fairseq ``sentence_prediction_r3f``).

    Example::

        trainer = R3FTrainer(model=model, args=TrainingArguments("out"), r3f=R3FConfig(r3f_lambda=0.7),
                             train_dataset=train, processing_class=tokenizer)
    """

    _r3f_objective = "classification"

    def __init__(self, *args: Any, r3f: R3FConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup_r3f(r3f)


class R3FSeq2SeqTrainer(R3FLossMixin, Seq2SeqTrainer):
    """``transformers.Seq2SeqTrainer`` with the R3F seq2seq objective (fairseq ``label_smoothed_cross_entropy_r3f``).

    The label smoothing is ``Seq2SeqTrainingArguments.label_smoothing_factor`` (the paper: 0.1).
    """

    _r3f_objective = "seq2seq"

    def __init__(self, *args: Any, r3f: R3FConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup_r3f(r3f)
