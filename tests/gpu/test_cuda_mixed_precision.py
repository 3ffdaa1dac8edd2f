"""GPU tier: the CUDA and mixed-precision paths of R3F. Skipped without a CUDA device; never in CI.

Run on a GPU machine with ``python -m pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import Seq2SeqTrainingArguments, TrainingArguments, default_data_collator

from r3f_utils import R3FConfig, R3FSeq2SeqTrainer, R3FTrainer, apply_r4f, symmetric_kl
from r3f_utils.tiny_models import build_tiny_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_symmetric_kl_is_float32_under_half_precision(dtype: torch.dtype) -> None:
    a = torch.randn(4, 16, 50, device="cuda", dtype=dtype)
    b = a + 1e-3 * torch.randn_like(a)
    kl = symmetric_kl(a, b)
    assert kl.dtype == torch.float32 and torch.isfinite(kl)
    ref = symmetric_kl(a.float(), b.float())
    assert kl.item() == pytest.approx(ref.item(), rel=1e-3)


def _data(n: int = 32, length: int = 16, target: int | None = None) -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (n, length), generator=g)
    labels = torch.randint(5, 60, (n, target), generator=g).tolist() if target else [i % 2 for i in range(n)]
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": labels})


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_r4f_classification_trains_on_cuda(precision: str, tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    apply_r4f(model)
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=8, max_steps=8, report_to=[],
                             save_strategy="no", logging_steps=2, **{precision: True})
    trainer = R3FTrainer(model=model, args=args, r3f=R3FConfig(), train_dataset=_data(),
                         data_collator=default_data_collator)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert all(torch.isfinite(torch.tensor(h["loss"])) and h["symm_kl"] >= 0 for h in logged)
    assert next(model.parameters()).is_cuda


def test_seq2seq_bf16_step_on_cuda(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-bart")
    args = Seq2SeqTrainingArguments(str(tmp_path), per_device_train_batch_size=8, max_steps=4, report_to=[],
                                    save_strategy="no", bf16=True, label_smoothing_factor=0.1, logging_steps=1)
    trainer = R3FSeq2SeqTrainer(model=model, args=args, r3f=R3FConfig(noise_type="normal"),
                                train_dataset=_data(target=6), data_collator=default_data_collator)
    trainer.train()
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("method", ["smart", "freelb"])
def test_adversarial_baselines_train_on_cuda(method: str, precision: str, tmp_path) -> None:
    """SMART's autograd.grad ascent and FreeLB's 1 + K scaled backward calls under CUDA autocast/GradScaler."""
    from r3f_utils import FreeLBConfig, FreeLBTrainer, SMARTConfig, SMARTTrainer

    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=8, max_steps=8, report_to=[],
                             save_strategy="no", logging_steps=2, **{precision: True})
    kwargs = {"model": model, "args": args, "train_dataset": _data(), "data_collator": default_data_collator}
    trainer = (SMARTTrainer(smart=SMARTConfig(ascent_steps=2), **kwargs) if method == "smart"
               else FreeLBTrainer(freelb=FreeLBConfig(ascent_steps=2), **kwargs))
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(torch.isfinite(torch.tensor(h["loss"])) for h in logged)
    assert next(model.parameters()).is_cuda


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("noise_type", ["uniform", "neftune"])
def test_causal_lm_lora_trains_on_cuda(precision: str, noise_type: str, tmp_path) -> None:
    """R3FSFTTrainer (TRL SFTTrainer) with a LoRA adapter under mixed precision: the KL is finite and positive,
    only the adapters move and the model stays on the GPU."""
    from peft import LoraConfig, get_peft_model
    from trl import SFTConfig

    from r3f_utils import R3FSFTTrainer

    prompts = [f"Question: add {i} and {i + 3}.\nAnswer:" for i in range(16)]
    answers = [f" {2 * i + 3}" for i in range(16)]
    model, tok = build_tiny_model("tiny-llama", texts=prompts + answers, dropout=0.0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                             lora_dropout=0.0, task_type="CAUSAL_LM"))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = SFTConfig(str(tmp_path), per_device_train_batch_size=8, learning_rate=1e-2, max_steps=4, logging_steps=1,
                     report_to=[], save_strategy="no", disable_tqdm=True, **{precision: True})
    data = datasets.Dataset.from_dict({"prompt": prompts, "completion": answers})
    r3f = R3FConfig(eps=1e-2, noise_type=noise_type, kl_chunk_size=7)  # chunked KL: positions not a multiple of 7
    trainer = R3FSFTTrainer(model=model, args=args, r3f=r3f, train_dataset=data, processing_class=tok)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(torch.isfinite(torch.tensor(h["loss"])) and h["symm_kl"] > 0 for h in logged)
    changed = {k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k].to(v.device))}
    assert changed and all("lora_" in k for k in changed)
    assert next(model.parameters()).is_cuda
