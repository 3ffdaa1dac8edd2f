"""R4F: spectral norm on the classification head, its scope, training, and the save/reload path."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from r3f_utils import apply_r4f, load_r4f_model, save_r4f_model
from r3f_utils.methods.r4f import head_spectral_norms, read_r4f_scope
from r3f_utils.tiny_models import build_tiny_model

CLASSIFIERS = ["tiny-roberta", "tiny-xlmr", "tiny-bert", "tiny-bart-classifier"]
SIGMA_TOL = 1e-3


def _batch(tokenizer):
    return tokenizer(["the cat sat on the mat .", "a dog ran ."], padding=True, return_tensors="pt")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_out_proj_scope_wraps_only_the_last_linear(name: str) -> None:
    model, _ = build_tiny_model(name, num_labels=3)
    wrapped = apply_r4f(model, spectral_norm="parametrization")  # warmed up: normalised at once
    assert len(wrapped) == 1 and wrapped[0].split(".")[0] in {"classifier", "classification_head"}
    norms = head_spectral_norms(model)
    last = list(norms)[-1]
    assert norms[last] == pytest.approx(1.0, abs=1e-2)


def test_all_scope_wraps_every_head_linear() -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    assert apply_r4f(model, scope="all") == ["classifier.dense", "classifier.out_proj"]


@pytest.mark.parametrize(("scope", "impl", "tol"), [("out_proj", "hook", 2e-2), ("all", "parametrization", SIGMA_TOL)])
def test_largest_singular_value_at_most_one_after_training(scope: str, impl: str, tol: float) -> None:
    """One power iteration per step: the official estimate (no warm-up) lags a little behind lr 1e-2 updates."""
    model, tok = build_tiny_model("tiny-roberta", num_labels=3)
    apply_r4f(model, scope=scope, spectral_norm=impl)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch, labels = _batch(tok), torch.tensor([0, 2])
    model.train()
    for _ in range(20):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    for name, sigma in head_spectral_norms(model).items():
        if scope == "all" or name == "out_proj":
            assert sigma <= 1 + tol, name


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_save_and_reload_gives_identical_logits(name: str, tmp_path) -> None:
    model, tok = build_tiny_model(name, num_labels=3)
    apply_r4f(model)
    model.train()
    for _ in range(3):  # move the power-iteration state away from its initial value
        model(**_batch(tok))
    model.eval()
    expected = model(**_batch(tok)).logits
    save_r4f_model(model, tmp_path)
    assert read_r4f_scope(tmp_path) == "out_proj"
    reloaded = load_r4f_model(tmp_path)
    assert torch.equal(reloaded(**_batch(tok)).logits, expected)


def test_plain_from_pretrained_loses_the_head(tmp_path) -> None:
    """The pitfall load_r4f_model exists for: from_pretrained re-initialises a parametrized head."""
    model, tok = build_tiny_model("tiny-roberta", num_labels=3)
    apply_r4f(model)
    model.eval()
    save_r4f_model(model, tmp_path)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert not torch.allclose(plain(**_batch(tok)).logits, model(**_batch(tok)).logits)


def test_errors_name_the_problem(tmp_path) -> None:
    seq2seq, _ = build_tiny_model("tiny-bart")
    with pytest.raises(ValueError, match=r"has no classification head.*generation"):
        apply_r4f(seq2seq)
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    with pytest.raises(ValueError, match="scope must be one of"):
        apply_r4f(model, scope="dense")
    apply_r4f(model)
    with pytest.raises(ValueError, match="already spectrally normalised"):
        apply_r4f(model)
    plain, _ = build_tiny_model("tiny-roberta", num_labels=2)
    with pytest.raises(ValueError, match="no R4F head"):
        save_r4f_model(plain, tmp_path / "a")
    plain.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="holds no R4F model"):
        load_r4f_model(tmp_path / "plain")
