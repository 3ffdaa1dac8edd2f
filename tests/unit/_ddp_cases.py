"""One SGD step of R3F / SMART / FreeLB / standard training on a global batch of 8, shared by the 2-rank gloo
worker and the 1-process reference of tests/unit/test_ddp.py (imported by both, so both run exactly the same step)."""

from __future__ import annotations

import copy
from pathlib import Path

import datasets
import torch
from transformers import Seq2SeqTrainingArguments, TrainingArguments, default_data_collator
from trl import SFTConfig

from r3f_utils import (
    FreeLBConfig,
    FreeLBTrainer,
    R3FConfig,
    R3FSeq2SeqTrainer,
    R3FSFTTrainer,
    R3FTrainer,
    SMARTConfig,
    SMARTTrainer,
)
from r3f_utils.tiny_models import build_tiny_model

GLOBAL_BATCH = 8
# case -> (objective, R3F or None for the standard path)
CASES = {
    "classification_r3f": ("classification", R3FConfig(eps=0.1, r3f_lambda=1.0)),
    "seq2seq_r3f": ("seq2seq", R3FConfig(eps=0.1, r3f_lambda=1.0, noise_type="normal")),
    "classification_standard": ("classification", None),
    "seq2seq_standard": ("seq2seq", None),
    "causal_lm_r3f": ("causal_lm", R3FConfig(eps=0.1, r3f_lambda=1.0)),  # R3FSFTTrainer, tiny Llama
    "classification_smart": ("smart", SMARTConfig(noise_std=0.1, step_size=0.1, epsilon=0.2, ascent_steps=2,
                                                  bregman_mu=1.0)),  # SMARTTrainer, with the Bregman term
    "classification_freelb": ("freelb", FreeLBConfig(ascent_steps=2, adv_lr=0.3, max_norm=0.5)),  # FreeLBTrainer
}
METHOD_KEYWORD = {"smart": "smart", "freelb": "freelb"}  # objective -> the trainer's config keyword (else r3f)


def deterministic_noise(like: torch.Tensor, eps: float, noise_type: str, generator=None) -> torch.Tensor:
    """Noise that depends only on the embedding values: any split of the batch over ranks sees the same noise."""
    return eps * torch.sin(like.detach() * 1000.0)


def deterministic_smart_noise(like: torch.Tensor, std: float, generator=None) -> torch.Tensor:
    """SMART's noise init as a function of the embedding values (split-invariant, like :func:`deterministic_noise`)."""
    return std * torch.sin(like.detach().float() * 1000.0)


def deterministic_freelb_delta(mask: torch.Tensor, dim: int, config, generator=None) -> torch.Tensor:
    """FreeLB's delta_0 as a function of the position only: every example gets the same delta_0 however the batch
    is split."""
    steps = torch.arange(mask.size(1) * dim, dtype=torch.float32).view(1, mask.size(1), dim)
    return 0.05 * torch.sin(steps).expand(mask.size(0), -1, -1) * mask.float().unsqueeze(-1)


def patch_deterministic(setattr_) -> None:
    """Make the noise of every method split-invariant (``setattr_``: ``setattr`` or ``monkeypatch.setattr``)."""
    import r3f_utils.methods.freelb
    import r3f_utils.methods.noise
    import r3f_utils.methods.smart

    setattr_(r3f_utils.methods.noise, "sample_noise", deterministic_noise)
    setattr_(r3f_utils.methods.smart, "initial_noise", deterministic_smart_noise)
    setattr_(r3f_utils.methods.freelb, "freelb_initial_delta", deterministic_freelb_delta)


def classification_data(length: int = 10, vocab: int = 50) -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (GLOBAL_BATCH, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * GLOBAL_BATCH,
                                       "labels": [i % 3 for i in range(GLOBAL_BATCH)]})


def seq2seq_data(length: int = 10, target: int = 9, vocab: int = 50) -> datasets.Dataset:
    """Target lengths 1,1,...,1,9: whatever half a rank gets, the two ranks hold different numbers of target
    tokens per sequence, which is where per-rank normalisation goes wrong."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (GLOBAL_BATCH, length), generator=g)
    labels = torch.randint(5, vocab, (GLOBAL_BATCH, target), generator=g)
    lengths = [1] * (GLOBAL_BATCH - 1) + [target]
    for row, n in enumerate(lengths):
        labels[row, n:] = -100
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * GLOBAL_BATCH,
                                       "labels": labels.tolist()})


def causal_lm_data(length: int = 10, vocab: int = 50) -> datasets.Dataset:
    """Prompt + completion rows (labels -100 on the prompt) with 1, 1, ..., 1, 6 completion tokens."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, vocab, (GLOBAL_BATCH, length), generator=g)
    labels = ids.clone()
    completions = [1] * (GLOBAL_BATCH - 1) + [6]
    for row, n in enumerate(completions):
        labels[row, : length - n] = -100
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * GLOBAL_BATCH,
                                       "labels": labels.tolist()})


def build(case: str) -> tuple[type, torch.nn.Module, datasets.Dataset, R3FConfig | None, dict]:
    objective, r3f = CASES[case]
    if objective == "causal_lm":
        model, tok = build_tiny_model("tiny-llama", dropout=0.0)
        return R3FSFTTrainer, model, causal_lm_data(), r3f, {"bf16": False, "gradient_checkpointing": False,
                                                             "processing_class": tok}
    if objective in ("classification", "smart", "freelb"):
        model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
        trainer = {"smart": SMARTTrainer, "freelb": FreeLBTrainer}.get(objective, R3FTrainer)
        return trainer, model, classification_data(), r3f, {}
    model, _ = build_tiny_model("tiny-bart", dropout=0.0)
    data = seq2seq_data()  # + decoder inputs, as DataCollatorForSeq2Seq(model=...) adds them (the standard path)
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=torch.tensor(data["labels"]))
    data = data.add_column("decoder_input_ids", decoder_input_ids.tolist())
    return R3FSeq2SeqTrainer, model, data, r3f, {"label_smoothing_factor": 0.1}


def one_sgd_step(case: str, out: Path, per_device_batch: int) -> dict[str, torch.Tensor]:
    """Parameter change of one SGD step (lr 1, no clipping, no decay) over the whole dataset (one global batch)."""
    trainer_cls, model, data, r3f, extra = build(case)
    model = copy.deepcopy(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args_cls = {R3FSeq2SeqTrainer: Seq2SeqTrainingArguments, R3FSFTTrainer: SFTConfig}.get(trainer_cls,
                                                                                         TrainingArguments)
    trainer_kwargs = {k: extra.pop(k) for k in ("processing_class",) if k in extra}
    args = args_cls(str(out / case), per_device_train_batch_size=per_device_batch, max_steps=1, optim="sgd",
                    learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0,
                    report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
                    dataloader_num_workers=0, **extra)
    keyword = METHOD_KEYWORD.get(CASES[case][0], "r3f")
    trainer_cls(model=model, args=args, **{keyword: r3f}, train_dataset=data, data_collator=default_data_collator,
                **trainer_kwargs).train()
    return {k: before[k] - v.detach() for k, v in model.named_parameters()}
