"""Fault: a diverging run (NaN/inf loss) stops with an error naming the step and the loss parts."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from transformers import DataCollatorWithPadding, TrainingArguments

from r3f_utils import R3FConfig, R3FTrainer
from r3f_utils.methods.guards import FiniteLossGuard, NonFiniteLossError, check_finite_loss
from r3f_utils.tiny_models import build_tiny_model

TEXTS = [f"the film number {i} was {'really good' if i % 2 else 'quite bad'} ." for i in range(32)]


def _trainer(tmp_path, r3f, learning_rate):
    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    data = datasets.Dataset.from_dict({"text": TEXTS, "label": [i % 2 for i in range(32)]})
    data = data.map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(str(tmp_path), per_device_train_batch_size=8, learning_rate=learning_rate,
                             max_steps=8, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                             seed=0, disable_tqdm=True, max_grad_norm=0.0)
    return R3FTrainer(model=model, args=args, r3f=r3f, train_dataset=data, processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok))


@pytest.mark.parametrize("r3f", [R3FConfig(), None], ids=["r3f", "standard"])
def test_huge_learning_rate_stops_with_step_and_loss_parts(tmp_path, r3f) -> None:
    """Silent before: loss logged as 0.0, grad_norm and symm_kl nan, train() returned, parameters all NaN."""
    trainer = _trainer(tmp_path, r3f, learning_rate=1e6)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.train()
    message = str(err.value)
    assert err.value.step >= 2 and f"training step {err.value.step}:" in message
    assert "learning rate" in message
    if r3f is not None:
        assert "task_loss=" in message and "symm_kl=" in message
        assert set(err.value.parts) == {"loss", "task_loss", "symm_kl"}
    assert not math.isfinite(err.value.parts["loss"])


def test_check_finite_loss_names_inf_parts() -> None:
    check_finite_loss(3, torch.tensor(1.5), task_loss=torch.tensor(1.0), symm_kl=0.5)  # finite: nothing
    with pytest.raises(NonFiniteLossError, match=r"training step 7: non-finite loss \(loss=inf, task_loss=inf, "
                                                 r"symm_kl=0\.5\)"):
        check_finite_loss(7, torch.tensor(float("inf")), task_loss=float("inf"), symm_kl=torch.tensor(0.5))


def test_guard_callback_catches_non_finite_grad_norm() -> None:
    class State:
        global_step = 12

    guard = FiniteLossGuard()
    guard.on_log(None, State(), "control", logs={"loss": 0.3, "grad_norm": 1.0})
    with pytest.raises(NonFiniteLossError, match=r"training step 12: .*grad_norm=nan"):
        guard.on_log(None, State(), "control", logs={"loss": 0.0, "grad_norm": float("nan"), "symm_kl": float("nan")})
