"""The probe (r3f_utils.methods.probing): the encoder is frozen and untouched, only the probe learns, dropout is off."""

from __future__ import annotations

import pytest
import torch
from transformers import DataCollatorWithPadding

from r3f_utils.data.glue import load_glue
from r3f_utils.methods.probing import (
    FullHead,
    ProbeConfig,
    build_probe,
    encoder_of,
    extract_features,
    fit_probe,
    frozen,
    majority_baseline,
    probe_encoder,
)
from r3f_utils.package_data import fixtures_dir
from r3f_utils.tiny_models import build_tiny_model


@pytest.fixture(scope="module")
def qnli():
    """A tiny RoBERTa (dropout 0.1, random weights) and the tokenized QNLI fixtures."""
    torch.set_num_threads(1)
    data = load_glue("qnli", data_dir=fixtures_dir("glue"))
    model, tokenizer = build_tiny_model("tiny-roberta", texts=data.texts(), num_labels=2, seed=0, dropout=0.1)

    def tok(ds):
        return ds.map(lambda b: tokenizer(b["question"], b["sentence"], truncation=True, max_length=64),
                      batched=True, remove_columns=["question", "sentence", "idx"], keep_in_memory=True)

    return model, tokenizer, tok(data.train), tok(data.dev[""])


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("head", ["linear", "full_head"])
def test_probing_leaves_the_model_bit_identical_and_only_the_probe_learns(qnli, head):
    model, tokenizer, train, dev = qnli
    model.train()  # as the Trainer leaves it: the probe must switch dropout off and restore the mode
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    before = _snapshot(model)
    cfg = ProbeConfig(head=head, epochs=5, seed=3)
    result = probe_encoder(model, train, dev, DataCollatorWithPadding(tokenizer), num_labels=2,
                           metrics=["accuracy"], cfg=cfg)
    after = model.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [], f"probing changed the model: {changed}"
    assert all(p.grad is None for p in model.parameters()), "the encoder received gradients"
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert model.training and all(m.training for m in model.modules())
    # the probe did learn: its weights moved away from the same seeded initialisation
    init = build_probe(cfg, result.probe.out_proj.in_features if head == "full_head" else result.probe.in_features, 2)
    assert isinstance(result.probe, FullHead if head == "full_head" else torch.nn.Linear)
    assert any(not torch.equal(a, b) for a, b in zip(init.state_dict().values(), result.probe.state_dict().values(),
                                                    strict=True))
    assert len(result.train_losses) == cfg.epochs
    assert result.num_train == len(train) and result.num_eval == len(dev)
    assert 0.0 <= result.metrics["accuracy"] <= 100.0
    assert result.majority == majority_baseline(dev["label"])


def test_features_are_computed_with_dropout_off(qnli):
    model, tokenizer, train, _ = qnli
    model.train()
    collate = DataCollatorWithPadding(tokenizer)
    encoder = encoder_of(model)
    a, labels = extract_features(encoder, train, collate, batch_size=16)
    b, _ = extract_features(encoder, train, collate, batch_size=7)  # other batches: padding must not matter
    assert torch.allclose(a, b, atol=1e-5), "features differ between two passes: dropout is on"
    assert a.shape == (len(train), model.config.hidden_size) and labels.tolist() == list(train["label"])
    with torch.no_grad():  # and they are the encoder's final <s> state in eval mode
        model.eval()
        first = collate([train[0]])
        ref = encoder(input_ids=first["input_ids"], attention_mask=first["attention_mask"]).last_hidden_state[0, 0]
    assert torch.allclose(a[0], ref, atol=1e-5)
    mean, _ = extract_features(encoder, train, collate, pooling="mean")
    assert not torch.allclose(mean, a)


def test_frozen_restores_flags_and_modes():
    layer = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    layer[0].bias.requires_grad_(False)
    layer.train()
    with frozen(layer):
        assert not any(p.requires_grad for p in layer.parameters()) and not layer.training
    assert layer[0].weight.requires_grad and not layer[0].bias.requires_grad and layer[1].training


def test_fit_probe_separates_separable_features_and_majority_baseline():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 3] > 0).long()
    cfg = ProbeConfig(epochs=60, learning_rate=0.05, seed=1)
    probe = build_probe(cfg, 8, 2)
    losses = fit_probe(probe, x, y, cfg)
    accuracy = (probe(x).argmax(-1) == y).float().mean().item()
    assert accuracy > 0.95 and losses[-1] < losses[0]
    assert majority_baseline([0, 0, 1, 0]) == 75.0


@pytest.mark.parametrize(("field", "value"), [("head", "mlp"), ("pooling", "cls"), ("learning_rate", 0),
                                              ("epochs", 0), ("batch_size", 2.5), ("dropout", 1.0),
                                              ("max_train_samples", 0)])
def test_probe_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ProbeConfig(**{field: value})


def test_encoder_of_refuses_a_model_without_encoder():
    with pytest.raises(ValueError, match="base_model"):
        encoder_of(torch.nn.Linear(2, 2))
