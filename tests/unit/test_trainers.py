"""R3FTrainer / R3FSeq2SeqTrainer: training, eval without noise, gradient accumulation, refusals."""

from __future__ import annotations

import copy

import datasets
import pytest
import torch
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    Seq2SeqTrainingArguments,
    TrainingArguments,
    default_data_collator,
)

import r3f_utils.methods.noise
import r3f_utils.methods.trainers
from r3f_utils import R3FConfig, R3FSeq2SeqTrainer, R3FTrainer, apply_r4f
from r3f_utils.tiny_models import build_tiny_model

GRAD_TOL = 1e-5
TEXTS = [f"the film number {i} was {'really good' if i % 2 else 'quite bad'} ." for i in range(48)]


def _args(tmp_path, cls=TrainingArguments, **kwargs):
    base = dict(per_device_train_batch_size=8, learning_rate=2e-3, num_train_epochs=4, logging_steps=2,
                report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    return cls(str(tmp_path), **{**base, **kwargs})


def _classification_data(tok, n=48, regression=False):
    labels = [float(i % 2) for i in range(n)] if regression else [i % 2 for i in range(n)]
    ds = datasets.Dataset.from_dict({"text": TEXTS[:n], "label": labels})
    return ds.map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])


def _seq2seq_data(tok, n=48):
    ds = datasets.Dataset.from_dict({"src": TEXTS[:n], "tgt": [t.split()[-2] for t in TEXTS[:n]]})
    return ds.map(lambda b: tok(b["src"], text_target=b["tgt"]), batched=True, remove_columns=["src", "tgt"])


@pytest.mark.parametrize("name", ["tiny-roberta", "tiny-bart-classifier"])
def test_r3f_trainer_trains_and_logs_symm_kl(name: str, tmp_path) -> None:
    model, tok = build_tiny_model(name, texts=TEXTS, num_labels=2)
    data = _classification_data(tok)
    trainer = R3FTrainer(model=model, args=_args(tmp_path), r3f=R3FConfig(r3f_lambda=1.0), train_dataset=data,
                         eval_dataset=data, processing_class=tok, data_collator=DataCollatorWithPadding(tok))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < before
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all("symm_kl" in h and h["symm_kl"] >= 0 for h in logged)


def test_r4f_model_trains_with_r3f_trainer(tmp_path) -> None:
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    apply_r4f(model)
    data = _classification_data(tok)
    trainer = R3FTrainer(model=model, args=_args(tmp_path), r3f=R3FConfig(), train_dataset=data, eval_dataset=data,
                         processing_class=tok, data_collator=DataCollatorWithPadding(tok))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before


@pytest.mark.parametrize("name", ["tiny-bart", "tiny-t5"])
def test_r3f_seq2seq_trainer_trains(name: str, tmp_path) -> None:
    model, tok = build_tiny_model(name, texts=TEXTS)
    data = _seq2seq_data(tok)
    args = _args(tmp_path, Seq2SeqTrainingArguments, label_smoothing_factor=0.1, learning_rate=3e-3)
    trainer = R3FSeq2SeqTrainer(model=model, args=args, r3f=R3FConfig(noise_type="normal"), train_dataset=data,
                                eval_dataset=data, processing_class=tok,
                                data_collator=DataCollatorForSeq2Seq(tok, model=model))
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.evaluate()["eval_loss"] < before
    assert all("symm_kl" in h for h in trainer.state.log_history if "loss" in h)


def test_regression_head_trains_without_kl(tmp_path) -> None:
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=1)
    data = _classification_data(tok, regression=True)
    trainer = R3FTrainer(model=model, args=_args(tmp_path), r3f=R3FConfig(r3f_lambda=5.0), train_dataset=data,
                         processing_class=tok, data_collator=DataCollatorWithPadding(tok))
    trainer.train()
    assert all(h["symm_kl"] == 0 for h in trainer.state.log_history if "loss" in h)


class _CountingNoise:
    def __init__(self) -> None:
        self.calls = 0
        self._real = r3f_utils.methods.trainers.noised_input_embeddings

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._real(*args, **kwargs)


def test_noise_only_in_train_mode(tmp_path, monkeypatch) -> None:
    counter = _CountingNoise()
    monkeypatch.setattr(r3f_utils.methods.trainers, "noised_input_embeddings", counter)
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    data = _classification_data(tok, n=16)
    trainer = R3FTrainer(model=model, args=_args(tmp_path, num_train_epochs=1), r3f=R3FConfig(),
                         train_dataset=data, eval_dataset=data, processing_class=tok,
                         data_collator=DataCollatorWithPadding(tok))
    trainer.evaluate()
    trainer.predict(data)
    assert counter.calls == 0
    trainer.train()
    assert counter.calls == 2  # 16 examples, batch 8: one noised pass per step


def _fixed_length_classification(n=8, length=10, vocab=50):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": [i % 3 for i in range(n)]})


def _fixed_length_seq2seq(n=8, length=10, target=5, vocab=50):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    labels = torch.randint(5, vocab, (n, target), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": labels.tolist()})


def _deterministic_noise(like, eps, noise_type, generator=None):
    """Noise that depends only on the embedding values, so any batching of the same rows sees the same noise."""
    return eps * torch.sin(like.detach() * 1000.0)


def _one_sgd_step(trainer_cls, model, data, tmp_path, accumulation, r3f, **extra):
    model = copy.deepcopy(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args_cls = Seq2SeqTrainingArguments if trainer_cls is R3FSeq2SeqTrainer else TrainingArguments
    args = _args(tmp_path / f"ga{accumulation}", args_cls, per_device_train_batch_size=8 // accumulation,
                 gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
                 lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, **extra)
    trainer_cls(model=model, args=args, r3f=r3f, train_dataset=data, data_collator=default_data_collator).train()
    return {k: before[k] - v.detach() for k, v in model.named_parameters()}


@pytest.mark.parametrize("pass_mode", ["concat", "separate"])
@pytest.mark.parametrize("objective", ["classification", "seq2seq"])
def test_gradient_accumulation_1_vs_2_gives_the_same_update(objective, pass_mode, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(r3f_utils.methods.noise, "sample_noise", _deterministic_noise)
    r3f = R3FConfig(eps=0.1, r3f_lambda=1.0, pass_mode=pass_mode)
    if objective == "classification":
        model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
        data, cls, extra = _fixed_length_classification(), R3FTrainer, {}
    else:
        model, _ = build_tiny_model("tiny-bart", dropout=0.0)
        data, cls, extra = _fixed_length_seq2seq(), R3FSeq2SeqTrainer, {"label_smoothing_factor": 0.1}
    one = _one_sgd_step(cls, model, data, tmp_path, 1, r3f, **extra)
    two = _one_sgd_step(cls, model, data, tmp_path, 2, r3f, **extra)
    assert max(v.abs().max().item() for v in one.values()) > 1e-4  # the step did something
    for name in one:
        assert torch.allclose(one[name], two[name], atol=GRAD_TOL), name


def test_concat_and_separate_passes_give_the_same_loss(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(r3f_utils.methods.noise, "sample_noise", _deterministic_noise)
    model, _ = build_tiny_model("tiny-bart", dropout=0.0)
    data = _fixed_length_seq2seq()
    batch = default_data_collator([data[i] for i in range(4)])
    losses = []
    for mode in ("concat", "separate"):
        args = _args(tmp_path, Seq2SeqTrainingArguments, label_smoothing_factor=0.1)
        trainer = R3FSeq2SeqTrainer(model=model, args=args, r3f=R3FConfig(eps=0.1, pass_mode=mode))
        model.train()
        losses.append(trainer.compute_loss(model, dict(batch)).item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_refusals_name_the_fix(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    with pytest.raises(ValueError, match="neftune_noise_alpha=None"):
        R3FTrainer(model=model, args=_args(tmp_path, neftune_noise_alpha=5.0), r3f=R3FConfig())
    with pytest.raises(ValueError, match="compute_loss_func"):
        R3FTrainer(model=model, args=_args(tmp_path), r3f=R3FConfig(), compute_loss_func=lambda *a, **k: 0)
    with pytest.raises(TypeError, match="R3FConfig"):
        R3FTrainer(model=model, args=_args(tmp_path), r3f={"eps": 1e-5})


def test_multi_label_head_is_refused(tmp_path) -> None:
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    model.config.problem_type = "multi_label_classification"
    trainer = R3FTrainer(model=model, args=_args(tmp_path), r3f=R3FConfig())
    batch = {**tok(TEXTS[:2], padding=True, return_tensors="pt"), "labels": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    model.train()
    with pytest.raises(ValueError, match="multi_label_classification"):
        trainer.compute_loss(model, batch)


def test_r3f_none_is_the_parent_trainer(tmp_path) -> None:
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    trainer = R3FTrainer(model=model, args=_args(tmp_path), r3f=None)
    batch = {**tok(TEXTS[:4], padding=True, return_tensors="pt"), "labels": torch.tensor([0, 1, 0, 1])}
    model.eval()
    assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(model(**batch).loss.item(), abs=1e-6)
