"""Issue 18 §2-3: SMART's EMA teacher survives a resume and runs under the student's autocast; SMART and FreeLB
stop at a non-finite loss; their plain-Trainer paths declare a mean loss (the DDP equivalence is in test_ddp)."""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import TrainingArguments, default_data_collator

import r3f_utils.methods.smart as smart_mod
from r3f_utils import FreeLBConfig, FreeLBTrainer, SMARTConfig, SMARTTrainer
from r3f_utils.methods.guards import NonFiniteLossError
from r3f_utils.methods.smart import TEACHER_FILE
from r3f_utils.tiny_models import build_tiny_model


def _data(n: int = 16, length: int = 10) -> datasets.Dataset:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (n, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": [i % 3 for i in range(n)]})


def _args(out, **kwargs) -> TrainingArguments:
    base = dict(per_device_train_batch_size=4, report_to=[], save_strategy="no", use_cpu=True, seed=0,
                disable_tqdm=True, learning_rate=1e-2, max_steps=4, lr_scheduler_type="constant")
    return TrainingArguments(str(out), **{**base, **kwargs})


def _deterministic_noise(like, std, generator=None):
    return std * torch.sin(like.detach().float() * 1000.0)


def test_plain_paths_declare_a_mean_loss(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    for trainer in (SMARTTrainer(model=model, args=_args(tmp_path), smart=None),
                    FreeLBTrainer(model=model, args=_args(tmp_path), freelb=None)):
        assert trainer.model_accepts_loss_kwargs is False  # as R3FTrainer(r3f=None): divided under accumulation
    assert SMARTTrainer(model=model, args=_args(tmp_path), smart=SMARTConfig()).model_accepts_loss_kwargs is True


@pytest.mark.parametrize("method", ["smart", "freelb"])
def test_a_non_finite_loss_stops_training_naming_the_step(method, tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    with torch.no_grad():
        model.classifier.out_proj.weight.fill_(float("nan"))
    kwargs = {"smart": SMARTConfig()} if method == "smart" else {"freelb": FreeLBConfig()}
    trainer_cls = SMARTTrainer if method == "smart" else FreeLBTrainer
    trainer = trainer_cls(model=model, args=_args(tmp_path), train_dataset=_data(),
                          data_collator=default_data_collator, **kwargs)
    with pytest.raises(NonFiniteLossError, match="training step 1: non-finite loss"):
        trainer.train()


def _smart(out, max_steps: int) -> SMARTTrainer:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
    args = _args(out, max_steps=max_steps, save_strategy="steps", save_steps=2)
    return SMARTTrainer(model=model, args=args, smart=SMARTConfig(bregman_mu=1.0, bregman_warmup=0.0),
                        train_dataset=_data(), data_collator=default_data_collator)


def test_the_ema_teacher_is_checkpointed_and_a_resumed_run_continues_with_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(smart_mod, "initial_noise", _deterministic_noise)
    straight = _smart(tmp_path / "straight", 4)
    straight.train()
    saved = tmp_path / "straight" / "checkpoint-2" / TEACHER_FILE
    assert saved.is_file()
    teacher_at_2 = torch.load(saved, weights_only=True)
    resumed = _smart(tmp_path / "straight", 4)  # same folder: resumes from its checkpoint-2
    made: list[dict[str, torch.Tensor]] = []
    original = resumed._make_teacher

    def recording(model):
        teacher = original(model)
        made.append({k: v.detach().clone() for k, v in teacher.state_dict().items()})
        return teacher

    monkeypatch.setattr(resumed, "_make_teacher", recording)
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))
    assert made, "the resumed run built no teacher"
    for name, value in teacher_at_2.items():  # the resumed run starts from the saved teacher, not a fresh copy
        assert torch.equal(made[0][name], value), name
    final_straight = dict(straight._teacher.state_dict())
    for name, value in resumed._teacher.state_dict().items():  # and ends where the uninterrupted run ended
        assert torch.allclose(value, final_straight[name], atol=1e-5), name


def test_a_resume_without_the_saved_teacher_is_refused(tmp_path) -> None:
    first = _smart(tmp_path, 2)
    first.train()
    (tmp_path / "checkpoint-2" / TEACHER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"{TEACHER_FILE} is missing"):
        _smart(tmp_path, 4).train(resume_from_checkpoint=True)


def test_the_teacher_runs_under_the_students_autocast(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    trainer = SMARTTrainer(model=model, args=_args(tmp_path, bf16=True, max_steps=2),
                           smart=SMARTConfig(bregman_mu=1.0), train_dataset=_data(),
                           data_collator=default_data_collator)
    seen: list[tuple[bool, bool]] = []
    original = trainer._make_teacher

    def make(student):
        teacher = original(student)
        teacher.roberta.encoder.register_forward_pre_hook(lambda *_: seen.append(
            (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu") == torch.bfloat16)))
        return teacher

    trainer._make_teacher = make
    trainer.train()
    assert seen and all(enabled and bf16 for enabled, bf16 in seen)
