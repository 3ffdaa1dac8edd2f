"""R3F for decoder-only causal LMs under TRL's ``SFTTrainer`` (beyond the paper; needs the ``[llm]`` extra).

``R3FSFTTrainer`` is ``trl.SFTTrainer`` plus ``r3f=R3FConfig(...)``: in train mode a step runs the clean and the
noised forward pass and one backward pass with the loss of :func:`r3f_utils.methods.r3f.r3f_causal_lm_loss`
(next-token CE + λ · symmetric KL over the positions that carry loss: ``SFTTrainer``'s completion-only and
padding masks decide them). Everything else (datasets, packing, chat templates, PEFT, evaluation) is
``SFTTrainer``'s; ``r3f=None`` is plain ``SFTTrainer``.

NEFTune: ``R3FConfig(noise_type="neftune", neftune_alpha=5)`` is "NEFTune noise + R3F KL" (the clean pass stays
clean). ``SFTConfig(neftune_noise_alpha=...)`` together with ``r3f`` is refused (NEFTune's hook would noise both
passes) unless ``R3FConfig(with_trainer_neftune=True)`` asks for exactly that.

PEFT: pass a ``PeftModel`` (or ``peft_config=``): the noise lands on the frozen base model's token embeddings,
and the gradients reach only the adapters. R4F (spectral norm of a classification head) has no head to act on
in a causal LM and is refused (:func:`refuse_r4f`).

Example (LoRA)::

    from peft import LoraConfig
    from trl import SFTConfig
    from r3f_utils import R3FConfig, R3FSFTTrainer

    trainer = R3FSFTTrainer(model="Qwen/Qwen2.5-0.5B", args=SFTConfig("out"), train_dataset=data,
                            peft_config=LoraConfig(r=16, task_type="CAUSAL_LM"), r3f=R3FConfig(noise_type="uniform"))
    trainer.train()  # logs loss and symm_kl
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from trl import SFTTrainer

from r3f_utils.methods.r3f import R3FConfig
from r3f_utils.methods.trainers import R3FLossMixin

__all__ = ["R3FSFTTrainer", "refuse_r4f"]


def refuse_r4f(model: nn.Module | str) -> None:
    """Raise the error that R4F gets on a causal LM (a model, or a model name): it has no classification head."""
    name = model if isinstance(model, str) else type(model).__name__
    raise ValueError(
        f"R4F is not defined for {name}: it spectrally normalises a sequence-classification head "
        "(fairseq: its out_proj), and a causal LM has none, only the vocabulary projection (lm_head, often tied "
        "to the input embeddings); the paper: 'R4F cannot be applied directly to generation tasks'. "
        "Use R3F (R3FConfig) for causal LMs"
    )


class R3FSFTTrainer(R3FLossMixin, SFTTrainer):
    """``trl.SFTTrainer`` with the R3F causal-LM objective; ``r3f=None`` is plain ``SFTTrainer``."""

    _r3f_objective = "causal_lm"

    def __init__(self, *args: Any, r3f: R3FConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup_r3f(r3f)

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if self.r3f is None or not model.training or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch, **kwargs)
        inputs = {**inputs, "use_cache": False}  # as SFTTrainer does (no KV cache while training)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch, **kwargs)
        self._record_token_metrics(inputs, outputs.logits)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _record_token_metrics(self, inputs: dict[str, Any], logits: torch.Tensor) -> None:
        """``mean_token_accuracy`` (clean pass) and ``num_tokens``, which SFTTrainer logs for its own loss.
        (Its ``entropy`` would need one more vocabulary-sized float32 tensor per step: not logged with R3F.)"""
        metrics = getattr(self, "_metrics", None)
        if metrics is None or not hasattr(self, "_total_train_tokens"):
            return  # another TRL version: leave its logs alone
        shift = inputs.get("shift_labels")
        targets = inputs["labels"][:, 1:] if shift is None else shift
        logits = logits[: targets.size(0)]  # pass_mode="concat": the clean half of the doubled batch
        predicted = logits.argmax(-1) if shift is not None else logits[:, :-1].argmax(-1)
        mask = targets.ne(-100)
        gather = self.accelerator.gather_for_metrics
        valid = gather(mask.sum()).sum()
        correct = gather((predicted.eq(targets) & mask).sum()).sum()
        metrics["train"]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if "attention_mask" in inputs:
            self._total_train_tokens += int(gather(inputs["attention_mask"].sum()).sum())
        metrics["train"]["num_tokens"] = [self._total_train_tokens]
