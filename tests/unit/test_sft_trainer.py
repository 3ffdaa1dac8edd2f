"""R3FSFTTrainer: TRL's SFTTrainer + R3F on a tiny Llama, with PEFT LoRA, NEFTune, gradient checkpointing and
gradient accumulation."""

from __future__ import annotations

import copy

import datasets
import pytest
import torch
from _ddp_cases import deterministic_noise
from peft import LoraConfig, PeftModel, get_peft_model
from trl import SFTConfig

import r3f_utils.methods.noise
from r3f_utils import R3FConfig, R3FSFTTrainer, apply_r4f
from r3f_utils.methods.sft import refuse_r4f
from r3f_utils.tiny_models import build_tiny_model

PROMPTS = [f"Question: add {i} and {i + 3}.\nAnswer:" for i in range(16)]
ANSWERS = [f" {2 * i + 3}" for i in range(16)]
GRAD_TOL = 1e-5


@pytest.fixture(scope="module")
def tiny():
    model, tok = build_tiny_model("tiny-llama", texts=PROMPTS + ANSWERS, dropout=0.0)
    data = datasets.Dataset.from_dict({"prompt": PROMPTS, "completion": ANSWERS})
    return model, tok, data


def _lora(model):
    return get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                           lora_dropout=0.0, task_type="CAUSAL_LM"))


def _args(tmp_path, **kwargs):
    base = dict(per_device_train_batch_size=8, learning_rate=1e-2, max_steps=3, logging_steps=1, report_to=[],
                save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0, bf16=False)
    return SFTConfig(str(tmp_path), **{**base, **kwargs})


@pytest.mark.parametrize(("r3f", "neftune_alpha"), [
    (R3FConfig(eps=1e-2), None),  # R3F (uniform)
    (None, 5.0),  # NEFTune (TRL's neftune_noise_alpha)
    (R3FConfig(noise_type="neftune", neftune_alpha=5.0), None),  # NEFTune noise + R3F KL
], ids=["r3f", "neftune", "r3f_neftune"])
def test_lora_trains_only_the_adapters_and_logs_symm_kl(tiny, tmp_path, r3f, neftune_alpha) -> None:
    model, tok, data = tiny
    peft_model = _lora(model)
    before = {k: v.detach().clone() for k, v in peft_model.named_parameters()}
    trainer = R3FSFTTrainer(model=peft_model, args=_args(tmp_path, neftune_noise_alpha=neftune_alpha), r3f=r3f,
                            train_dataset=data, eval_dataset=data, processing_class=tok)
    trainer.train()
    changed = {k for k, v in peft_model.named_parameters() if not torch.equal(v.detach(), before[k])}
    assert changed and all("lora_" in k for k in changed)  # the frozen base (embeddings included) did not move
    assert any("lora_A" in k for k in changed)  # the gradient reached the adapters through both passes
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 3
    if r3f is None:
        assert all("symm_kl" not in h for h in logged)
    else:
        assert all(h["symm_kl"] > 0 for h in logged)
    assert all(0 <= h["mean_token_accuracy"] <= 1 and h["num_tokens"] > 0 for h in logged)  # SFTTrainer's logs
    assert "eval_loss" in trainer.evaluate()  # eval: one clean pass


def test_the_noise_lands_on_the_frozen_base_embeddings(tiny, monkeypatch) -> None:
    model, _, _ = tiny
    peft_model = _lora(model)
    embeddings = peft_model.get_base_model().get_input_embeddings()
    seen = []
    embeddings.register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    ids = torch.tensor([[0, 5, 6, 7]])
    with r3f_utils.methods.noise.noised_input_embeddings(peft_model, eps=0.1, noise_type="uniform", detach=False):
        noised = peft_model(input_ids=ids).logits
    clean = peft_model(input_ids=ids).logits
    assert not embeddings.weight.requires_grad
    assert not torch.allclose(noised, clean)
    assert torch.equal(seen[0], seen[1])  # the hook adds the noise after the lookup; the lookup itself is clean


def test_r3f_with_trainer_neftune_is_refused_unless_asked_for_by_name(tiny, tmp_path) -> None:
    model, tok, data = tiny
    with pytest.raises(ValueError, match=r"noise_type='neftune'.*with_trainer_neftune=True"):
        R3FSFTTrainer(model=copy.deepcopy(model), args=_args(tmp_path, neftune_noise_alpha=5.0), r3f=R3FConfig(),
                      train_dataset=data, processing_class=tok)
    trainer = R3FSFTTrainer(model=copy.deepcopy(model), args=_args(tmp_path, neftune_noise_alpha=5.0, max_steps=1),
                            r3f=R3FConfig(with_trainer_neftune=True), train_dataset=data, processing_class=tok)
    trainer.train()
    assert trainer.state.log_history[0]["symm_kl"] > 0


def test_r4f_is_refused_without_a_classification_head(tiny) -> None:
    model, _, _ = tiny
    peft_model = _lora(model)
    assert isinstance(peft_model, PeftModel)
    for candidate in (model, peft_model):
        with pytest.raises(ValueError, match=r"no classification head.*generation tasks"):
            apply_r4f(candidate)
    with pytest.raises(ValueError, match=r"R4F is not defined for LlamaForCausalLM.*lm_head.*R3FConfig"):
        refuse_r4f(model)


def _one_sgd_step(model, tok, data, tmp_path, name, **kwargs):
    """Parameter change of one SGD step (lr 1, no clipping, float32: SFTConfig defaults to bf16 and gradient
    checkpointing) on the 8 first examples."""
    args = _args(tmp_path / name, max_steps=1, optim="sgd", learning_rate=1.0, lr_scheduler_type="constant",
                 max_grad_norm=0.0, weight_decay=0.0, **kwargs)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer = R3FSFTTrainer(model=model, args=args, r3f=R3FConfig(eps=0.1, noise_type="neftune", neftune_alpha=5.0),
                            train_dataset=data.select(range(8)), processing_class=tok)
    trainer.train()
    assert trainer.model.is_gradient_checkpointing == args.gradient_checkpointing  # the Trainer enables it in train()
    return {k: before[k] - v.detach() for k, v in model.named_parameters() if v.requires_grad}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gradient_checkpointing_and_accumulation_give_the_same_update(tiny, tmp_path, monkeypatch, lora) -> None:
    monkeypatch.setattr(r3f_utils.methods.noise, "sample_noise", deterministic_noise)
    model, tok, data = tiny
    make = _lora if lora else copy.deepcopy
    plain = _one_sgd_step(make(model), tok, data, tmp_path, "plain", gradient_checkpointing=False)
    checkpointed = _one_sgd_step(make(model), tok, data, tmp_path, "gc", gradient_checkpointing=True)
    accumulated = _one_sgd_step(make(model), tok, data, tmp_path, "ga", per_device_train_batch_size=4,
                                gradient_accumulation_steps=2, gradient_checkpointing=False)
    assert max(v.abs().max().item() for v in plain.values()) > 1e-4  # the step moved the parameters
    for name, other in (("gradient checkpointing", checkpointed), ("gradient accumulation 4 x 2", accumulated)):
        worst = max((other[k] - plain[k]).abs().max().item() for k in plain)
        assert worst < GRAD_TOL, f"{name} differs from one batch of 8 by {worst:.2e}"


def test_concat_and_separate_passes_give_the_same_causal_loss(tiny, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(r3f_utils.methods.noise, "sample_noise", deterministic_noise)
    model, tok, _ = tiny
    data = datasets.Dataset.from_dict({"prompt": [p + " now" * (i % 3) for i, p in enumerate(PROMPTS)],
                                       "completion": ANSWERS})  # different lengths: padded rows
    losses = {}
    for mode in ("separate", "concat"):
        trainer = R3FSFTTrainer(model=copy.deepcopy(model), args=_args(tmp_path / mode, bf16=False), train_dataset=data,
                                processing_class=tok, r3f=R3FConfig(noise_type="neftune", pass_mode=mode))
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        assert batch["attention_mask"].eq(0).any()  # padded rows: NEFTune's real length differs from the batch's
        trainer.model.train()
        losses[mode] = trainer.compute_loss(trainer.model, batch).item()
    assert losses["concat"] == pytest.approx(losses["separate"], rel=1e-5)
