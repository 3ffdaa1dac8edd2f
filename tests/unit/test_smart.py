"""SMART: config validation, the loss pieces against formulas written here, the trainer (accumulation, bf16)."""

from __future__ import annotations

import copy
import math

import datasets
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainingArguments, default_data_collator

import r3f_utils.methods.smart as smart_mod
from r3f_utils import SMARTConfig, SMARTTrainer, smart_ascent_step, smart_loss, smoothness_divergence
from r3f_utils.methods.smart import smart_adversarial_logits, update_teacher
from r3f_utils.tiny_models import build_tiny_model

GRAD_TOL = 1e-5


def _kl(p_logits, q_logits):
    """KL(p‖q) summed over everything, written out: Σ p (log p − log q)."""
    p = torch.softmax(p_logits.double(), -1)
    return (p * (torch.log(p) - torch.log_softmax(q_logits.double(), -1))).sum()


def test_defaults_are_the_official_code_and_paper_values() -> None:
    cfg = SMARTConfig()
    assert (cfg.ascent_steps, cfg.adv_lambda, cfg.noise_std, cfg.norm) == (1, 1.0, 1e-5, "inf")  # mt-dnn
    assert (cfg.step_size, cfg.epsilon) == (1e-3, 1e-5)  # paper (secondary restatement)
    assert cfg.bregman_mu == 0.0 and (cfg.bregman_beta, cfg.bregman_beta_late) == (0.99, 0.999)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("ascent_steps", 0, "ascent_steps must be an integer >= 1"),
    ("ascent_steps", 1.5, "ascent_steps must be an integer >= 1"),
    ("step_size", -1e-3, "step_size must be > 0"),
    ("norm", "l1", "norm must be one of 'inf', 'l2'"),
    ("ascent_rule", "fgsm", "ascent_rule must be one of"),
    ("site", "layer3", "site must be one of"),
    ("reg_detach", "clean", "reg_detach must be one of"),
    ("noise_std", -1.0, "noise_std must be >= 0"),
    ("epsilon", 0.0, "epsilon must be > 0 or None"),
    ("adv_lambda", "1e-5", "adv_lambda must be a finite number"),
    ("adv_lambda", math.nan, "adv_lambda must be a finite number"),
    ("bregman_mu", -1.0, "bregman_mu must be >= 0"),
    ("bregman_beta", 1.5, r"bregman_beta must be in \[0, 1\]"),
])
def test_bad_values_raise_naming_the_field(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=f"SMARTConfig.{message}"):
        SMARTConfig(**{field: value})


def test_ascent_step_rules_match_their_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    noise, grad = torch.randn(2, 3, 5, generator=g) * 1e-5, torch.randn(2, 3, 5, generator=g)
    # paper, inf: noise + η g / max|g| per token, then clamp to ±ε
    cfg = SMARTConfig(step_size=1e-3, epsilon=1e-5)
    expected = (noise + 1e-3 * grad / grad.abs().max(-1, keepdim=True).values).clamp(-1e-5, 1e-5)
    assert torch.allclose(smart_ascent_step(noise, grad, cfg), expected)
    # paper without projection
    cfg = SMARTConfig(step_size=1e-3, epsilon=None)
    assert torch.allclose(smart_ascent_step(noise, grad, cfg), noise + 1e-3 * grad / grad.abs().amax(-1, True))
    # paper, l2: per-token unit gradient, then onto the l2 ball of radius ε
    cfg = SMARTConfig(step_size=1e-3, epsilon=1e-4, norm="l2")
    moved = noise + 1e-3 * grad / grad.norm(dim=-1, keepdim=True)
    expected = moved * torch.clamp(1e-4 / moved.norm(dim=-1, keepdim=True), max=1.0)
    assert torch.allclose(smart_ascent_step(noise, grad, cfg), expected)
    # mt-dnn: (noise + η g) / (max|noise + η g| + 1e-6): every token ends near ∞-norm 1
    cfg = SMARTConfig(step_size=1e-3, ascent_rule="mtdnn")
    moved = noise + 1e-3 * grad
    out = smart_ascent_step(noise, grad, cfg)
    assert torch.allclose(out, moved / (moved.abs().amax(-1, keepdim=True) + 1e-6))
    assert torch.allclose(out.abs().amax(-1), torch.ones(2, 3), atol=1e-2)
    # non-finite gradient: the noise is kept
    assert torch.equal(smart_ascent_step(noise, torch.full_like(grad, math.inf), SMARTConfig()), noise)


def test_smoothness_divergence_value_and_stop_gradients() -> None:
    g = torch.Generator().manual_seed(1)
    clean, adv = torch.randn(4, 3, generator=g, requires_grad=True), torch.randn(4, 3, generator=g, requires_grad=True)
    expected = (_kl(adv, clean) + _kl(clean, adv)) / 4
    for mode in ("targets", "none"):
        assert smoothness_divergence(adv, clean, reg_detach=mode).item() == pytest.approx(expected.item(), rel=1e-5)
    # "targets": each direction's target detached -> grad wrt clean is that of KL(sg(p_adv)‖p_clean) only
    smoothness_divergence(adv, clean, reg_detach="targets").backward()
    ref_clean = clean.detach().clone().requires_grad_(True)
    (_kl(adv.detach(), ref_clean) / 4).backward()
    assert torch.allclose(clean.grad, ref_clean.grad.float(), atol=1e-6)
    # "none": the full symmetric-KL gradient
    clean.grad = None
    smoothness_divergence(adv, clean, reg_detach="none").backward()
    ref_clean = clean.detach().clone().requires_grad_(True)
    ((_kl(adv.detach(), ref_clean) + _kl(ref_clean, adv.detach())) / 4).backward()
    assert torch.allclose(clean.grad, ref_clean.grad.float(), atol=1e-6)
    # regression: mean squared difference
    c, a = torch.randn(4, 1, generator=g), torch.randn(4, 1, generator=g)
    assert smoothness_divergence(a, c, regression=True).item() == pytest.approx(((c - a) ** 2).sum().item() / 4)


def test_smart_loss_is_ce_plus_weighted_terms() -> None:
    g = torch.Generator().manual_seed(2)
    clean, adv, teacher = (torch.randn(6, 3, generator=g) for _ in range(3))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    cfg = SMARTConfig(adv_lambda=3.0, bregman_mu=0.5)
    out = smart_loss(clean, adv, labels, cfg, teacher_logits=teacher)
    sym = lambda a, b: (_kl(a, b) + _kl(b, a)).item() / 6  # noqa: E731
    expected = F.cross_entropy(clean, labels).item() + 3.0 * sym(adv, clean) + 0.5 * sym(teacher, clean)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.smoothness.item() == pytest.approx(sym(adv, clean), rel=1e-5)
    # normalised by the accumulation total instead of this batch: same sum / 12
    halved = smart_loss(clean, adv, labels, cfg, teacher_logits=teacher, num_items=12)
    assert halved.loss.item() == pytest.approx(expected / 2, rel=1e-5)
    # no adversarial and no teacher logits: plain CE; regression: MSE
    assert smart_loss(clean, None, labels, cfg).loss.item() == pytest.approx(F.cross_entropy(clean, labels).item())
    y = torch.randn(6, generator=g)
    assert smart_loss(clean[:, :1], None, y, cfg, regression=True).loss.item() == pytest.approx(
        F.mse_loss(clean[:, 0], y).item(), rel=1e-6)


def test_inner_maximisation_on_a_linear_model_follows_algorithm_1(monkeypatch) -> None:
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 4, 5, generator=g), torch.randn(5, 3, generator=g)
    init = torch.randn(2, 4, 5, generator=g) * 1e-3
    monkeypatch.setattr(smart_mod, "initial_noise", lambda like, std, generator=None: init.clone())
    calls = []

    def forward(noise):
        calls.append(noise.requires_grad)
        return ((x + noise) @ w).sum(1)

    cfg = SMARTConfig(ascent_steps=2, step_size=1e-2, epsilon=None)
    clean = forward(torch.zeros_like(x)).detach()
    calls.clear()
    adv = smart_adversarial_logits(forward, clean, x, cfg)
    noise = init.clone()
    for _ in range(2):
        noise.requires_grad_(True)
        (grad,) = torch.autograd.grad(_kl(forward(noise), clean), noise)
        noise = (noise + 1e-2 * grad / grad.abs().amax(-1, True)).detach().float()
    assert torch.allclose(adv, ((x + noise) @ w).sum(1), atol=1e-5)
    assert calls[:3] == [True, True, False]  # K ascent forwards, then one at sg(noise)


def test_teacher_is_an_ema_of_the_weights() -> None:
    model, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    before = teacher.weight.detach().clone()
    update_teacher(teacher, model, beta=0.99)
    assert torch.allclose(teacher.weight, 0.99 * before + 0.01 * model.weight.detach())


# ---- trainer

def _fixed_length_classification(n=8, length=10, vocab=50, labels=3):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * length] * n,
                                       "labels": [i % labels for i in range(n)]})


def _deterministic_noise(like, std, generator=None):
    """Noise that depends only on the embedding values: any batching of the same rows sees the same noise."""
    return std * torch.sin(like.detach().float() * 1000.0)


def _args(tmp_path, **kwargs):
    base = dict(per_device_train_batch_size=8, report_to=[], save_strategy="no", use_cpu=True, seed=0,
                disable_tqdm=True, logging_steps=1)
    return TrainingArguments(str(tmp_path), **{**base, **kwargs})


def _one_sgd_step(model, data, tmp_path, accumulation, config):
    model = copy.deepcopy(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = _args(tmp_path / f"ga{accumulation}", per_device_train_batch_size=8 // accumulation,
                 gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0,
                 lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0)
    SMARTTrainer(model=model, args=args, smart=config, train_dataset=data, data_collator=default_data_collator).train()
    return {k: before[k] - v.detach() for k, v in model.named_parameters()}


@pytest.mark.parametrize("config", [SMARTConfig(noise_std=0.1, step_size=0.1, epsilon=0.2, ascent_steps=2),
                                    SMARTConfig(ascent_rule="mtdnn", site="embeddings_output", bregman_mu=1.0)],
                         ids=["paper-k2", "mtdnn-embeddings_output-bregman"])
def test_gradient_accumulation_1_vs_2_gives_the_same_update(config, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(smart_mod, "initial_noise", _deterministic_noise)
    model, _ = build_tiny_model("tiny-roberta", num_labels=3, dropout=0.0)
    data = _fixed_length_classification()
    one = _one_sgd_step(model, data, tmp_path, 1, config)
    two = _one_sgd_step(model, data, tmp_path, 2, config)
    assert max(v.abs().max().item() for v in one.values()) > 1e-4
    for name in one:
        assert torch.allclose(one[name], two[name], atol=GRAD_TOL), name


def test_trainer_trains_under_bf16_autocast_and_logs_the_terms(tmp_path) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    data = _fixed_length_classification(n=16)
    trainer = SMARTTrainer(model=model, args=_args(tmp_path, bf16=True, max_steps=3, learning_rate=1e-3),
                           smart=SMARTConfig(bregman_mu=1.0), train_dataset=data, eval_dataset=data,
                           data_collator=default_data_collator)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(math.isfinite(h["loss"]) and h["smart_reg"] >= 0 and "bregman" in h for h in logged)
    assert trainer._teacher is not None  # the EMA teacher exists and was updated each step
    assert not torch.equal(trainer._teacher.classifier.out_proj.weight, model.classifier.out_proj.weight)
    ids = torch.tensor(data[:2]["input_ids"])
    with torch.no_grad():  # the copy's (autocast-patched) forward runs the teacher's weights, not the model's
        assert not torch.allclose(trainer._teacher(input_ids=ids).logits, model.eval()(input_ids=ids).logits)
    assert math.isfinite(trainer.evaluate()["eval_loss"])  # eval: one clean pass


class _NoEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x, labels=None):
        return self.linear(x)


def test_refusals_name_the_field(tmp_path) -> None:
    with pytest.raises(ValueError, match="model: _NoEmbeddings has no input embeddings"):
        SMARTTrainer(model=_NoEmbeddings(), args=_args(tmp_path), smart=SMARTConfig())
    bart, _ = build_tiny_model("tiny-bart-classifier", num_labels=2)
    with pytest.raises(ValueError, match=r"SMARTConfig\.site='embeddings_output'"):
        SMARTTrainer(model=bart, args=_args(tmp_path), smart=SMARTConfig(site="embeddings_output"))
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    with pytest.raises(ValueError, match="neftune_noise_alpha=None"):
        SMARTTrainer(model=model, args=_args(tmp_path, neftune_noise_alpha=5.0), smart=SMARTConfig())
    with pytest.raises(TypeError, match="SMARTConfig"):
        SMARTTrainer(model=model, args=_args(tmp_path), smart={"adv_lambda": 1.0})
    assert SMARTTrainer(model=_NoEmbeddings(), args=_args(tmp_path), smart=None).smart is None
