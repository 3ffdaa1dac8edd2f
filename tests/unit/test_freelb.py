"""FreeLB: config validation, init and ascent against formulas written here, the trainer's accumulated gradient,
shared dropout masks, gradient accumulation, bf16 autocast and refusals."""

from __future__ import annotations

import copy
import math

import datasets
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainingArguments, default_data_collator

import r3f_utils.methods.freelb as freelb_mod
from r3f_utils import FreeLBConfig, FreeLBTrainer, freelb_ascent_step, freelb_initial_delta
from r3f_utils.tiny_models import build_tiny_model

GRAD_TOL = 1e-5


def test_defaults_are_the_published_sst2_recipe() -> None:
    cfg = FreeLBConfig()
    assert (cfg.ascent_steps, cfg.adv_lr, cfg.init_mag, cfg.max_norm, cfg.norm, cfg.shared_dropout) == (
        2, 0.1, 1.0, 0.6, "l2", True)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("ascent_steps", 0, "ascent_steps must be an integer >= 1"),
    ("adv_lr", -0.1, "adv_lr must be > 0"),
    ("adv_lr", "1e-1", "adv_lr must be a finite number"),
    ("init_mag", -1.0, "init_mag must be >= 0"),
    ("max_norm", 0.0, "max_norm must be > 0 or None"),
    ("norm", "l1", "norm must be one of 'l2', 'linf'"),
    ("shared_dropout", "yes", "shared_dropout must be True or False"),
])
def test_bad_values_raise_naming_the_field(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=f"FreeLBConfig.{message}"):
        FreeLBConfig(**{field: value})


def test_initial_delta_follows_fairseq() -> None:
    torch.manual_seed(0)
    mask = torch.ones(64, 50)
    mask[:, 40:] = 0
    delta = freelb_initial_delta(mask, 32, FreeLBConfig(init_mag=0.6))
    assert delta[:, 40:].abs().max() == 0  # padding stays clean
    # U(-1,1)·mag/sqrt(L·d): E‖δ‖_F² = L·d·(1/3)·mag²/(L·d) = mag²/3
    assert delta.flatten(1).norm(dim=1).mean().item() == pytest.approx(0.6 / math.sqrt(3), rel=0.02)
    linf = freelb_initial_delta(mask, 32, FreeLBConfig(init_mag=0.6, norm="linf"))
    assert linf.abs().max().item() <= 0.6 and linf.abs().max().item() > 0.59


def test_ascent_step_matches_the_formulas() -> None:
    g = torch.Generator().manual_seed(1)
    delta, grad = torch.randn(3, 4, 5, generator=g) * 0.1, torch.randn(3, 4, 5, generator=g)
    gnorm = grad.flatten(1).norm(dim=1).view(-1, 1, 1)
    moved = delta + 0.5 * grad / gnorm
    assert torch.allclose(freelb_ascent_step(delta, grad, FreeLBConfig(adv_lr=0.5, max_norm=None)), moved)
    dnorm = moved.flatten(1).norm(dim=1).view(-1, 1, 1)
    expected = torch.where(dnorm > 0.3, moved * 0.3 / dnorm, moved)
    out = freelb_ascent_step(delta, grad, FreeLBConfig(adv_lr=0.5, max_norm=0.3))
    assert torch.allclose(out, expected) and torch.allclose(out.flatten(1).norm(dim=1), torch.full((3,), 0.3))
    ginf = grad.flatten(1).abs().amax(dim=1).view(-1, 1, 1)
    expected = (delta + 0.5 * grad / ginf).clamp(-0.2, 0.2)
    assert torch.allclose(freelb_ascent_step(delta, grad, FreeLBConfig(adv_lr=0.5, max_norm=0.2, norm="linf")),
                          expected)
    assert torch.equal(freelb_ascent_step(delta, grad * math.nan, FreeLBConfig()), delta)


def _fixed_length_classification(n=8, length=10, vocab=50):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": [i % 3 for i in range(n)]})


def _args(tmp_path, **kwargs):
    base = dict(per_device_train_batch_size=8, report_to=[], save_strategy="no", use_cpu=True, seed=0,
                disable_tqdm=True, logging_steps=1)
    return TrainingArguments(str(tmp_path), **{**base, **kwargs})


def _deterministic_delta(mask, dim, config, generator=None):
    """An init that depends on nothing but the row position: any batching of the same rows sees the same δ₀."""
    steps = torch.arange(mask.size(1) * dim, dtype=torch.float32).view(1, mask.size(1), dim)
    return 0.05 * torch.sin(steps).expand(mask.size(0), -1, -1) * mask.float().unsqueeze(-1)


def test_training_step_accumulates_the_gradients_of_all_passes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(freelb_mod, "freelb_initial_delta", _deterministic_delta)
    model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
    batch = default_data_collator([_fixed_length_classification()[i] for i in range(4)])
    cfg = FreeLBConfig(ascent_steps=2, adv_lr=0.3, max_norm=0.5)
    # reference, written out: δ_{t+1} = clip(δ_t + α g_t/‖g_t‖), gradient = Σ_t ∇θ CE(δ_t) / (1 + K)
    reference = copy.deepcopy(model).train()
    emb = reference.get_input_embeddings()
    delta = _deterministic_delta(batch["attention_mask"], emb.embedding_dim, cfg)
    for t in range(3):
        delta.requires_grad_(True)
        logits = reference(inputs_embeds=emb(batch["input_ids"]) + delta,
                           attention_mask=batch["attention_mask"]).logits
        (F.cross_entropy(logits, batch["labels"]) / 3).backward()
        if t < 2:
            g = delta.grad
            moved = delta.detach() + 0.3 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
            norms = moved.flatten(1).norm(dim=1).view(-1, 1, 1)
            delta = torch.where(norms > 0.5, moved * 0.5 / norms, moved)
    trainer = FreeLBTrainer(model=model, args=_args(tmp_path), freelb=cfg)
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer.training_step(model, dict(batch))
    assert math.isfinite(loss.item())
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


@pytest.mark.parametrize("shared", [True, False])
def test_dropout_masks_are_shared_across_passes_only_when_asked(shared: bool, tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.3)
    batch = default_data_collator([_fixed_length_classification()[i] for i in range(4)])
    logits: list[torch.Tensor] = []
    model.register_forward_hook(lambda _m, _a, out: logits.append(out.logits.detach()))
    cfg = FreeLBConfig(ascent_steps=2, init_mag=0.0, adv_lr=1e-9, shared_dropout=shared)  # δ ≈ 0 in every pass
    trainer = FreeLBTrainer(model=model, args=_args(tmp_path), freelb=cfg)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, dict(batch))
    assert len(logits) == 3
    same = all(torch.allclose(logits[0], other, atol=1e-5) for other in logits[1:])
    assert same is shared


def _one_sgd_step(model, data, tmp_path, accumulation, config, **extra):
    model = copy.deepcopy(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = _args(tmp_path / f"ga{accumulation}", per_device_train_batch_size=8 // accumulation,
                 gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
                 lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, **extra)
    FreeLBTrainer(model=model, args=args, freelb=config, train_dataset=data,
                  data_collator=default_data_collator).train()
    return {k: before[k] - v.detach() for k, v in model.named_parameters()}


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_gradient_accumulation_1_vs_2_gives_the_same_update(norm, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(freelb_mod, "freelb_initial_delta", _deterministic_delta)
    model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
    data = _fixed_length_classification()
    cfg = FreeLBConfig(ascent_steps=2, norm=norm, max_norm=0.1)
    one = _one_sgd_step(model, data, tmp_path, 1, cfg)
    two = _one_sgd_step(model, data, tmp_path, 2, cfg)
    assert max(v.abs().max().item() for v in one.values()) > 1e-4
    for name in one:
        assert torch.allclose(one[name], two[name], atol=GRAD_TOL), name


def test_trainer_trains_under_bf16_autocast(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    data = _fixed_length_classification(n=16)
    trainer = FreeLBTrainer(model=model, args=_args(tmp_path, bf16=True, max_steps=3, learning_rate=1e-3),
                            freelb=FreeLBConfig(), train_dataset=data, eval_dataset=data,
                            data_collator=default_data_collator)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(math.isfinite(h["loss"]) and 0 < h["delta_norm"] <= 0.6 + 1e-6 for h in logged)
    assert math.isfinite(trainer.evaluate()["eval_loss"])


class _NoEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x, labels=None):
        return self.linear(x)


def test_refusals_name_the_field(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    with pytest.raises(ValueError, match="neftune_noise_alpha=None"):
        FreeLBTrainer(model=model, args=_args(tmp_path, neftune_noise_alpha=5.0), freelb=FreeLBConfig())
    with pytest.raises(ValueError, match="compute_loss_func"):
        FreeLBTrainer(model=model, args=_args(tmp_path), freelb=FreeLBConfig(), compute_loss_func=lambda *a, **k: 0)
    with pytest.raises(ValueError, match="model: _NoEmbeddings has no input embeddings"):
        FreeLBTrainer(model=_NoEmbeddings(), args=_args(tmp_path), freelb=FreeLBConfig())
    with pytest.raises(TypeError, match="FreeLBConfig"):
        FreeLBTrainer(model=model, args=_args(tmp_path), freelb={"ascent_steps": 2})
