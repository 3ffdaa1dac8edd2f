"""The R3F objective against reference values computed by hand (pure tensors, no model)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers.trainer_pt_utils import LabelSmoother

from r3f_utils import R3FConfig, r3f_classification_loss, r3f_seq2seq_loss, symmetric_kl

TOL = 1e-6
# p = softmax([0, 0]) = (1/2, 1/2); q = softmax([ln 3, 0]) = (3/4, 1/4)
P_LOGITS, Q_LOGITS = [0.0, 0.0], [math.log(3.0), 0.0]
KL_PQ = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
KL_QP = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
SYMM = KL_PQ + KL_QP  # 0.274653...


def test_hand_value_two_classes() -> None:
    noised = torch.tensor([P_LOGITS, P_LOGITS])
    clean = torch.tensor([Q_LOGITS, P_LOGITS])  # second row identical: contributes 0
    assert pytest.approx(0.2746531, abs=1e-6) == SYMM
    assert symmetric_kl(noised, clean).item() == pytest.approx(SYMM / 2, abs=TOL)


def test_zero_for_identical_and_symmetric() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(4, 7), torch.randn(4, 7)
    assert symmetric_kl(a, a.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert symmetric_kl(a, b).item() == pytest.approx(symmetric_kl(b, a).item(), abs=TOL)
    assert symmetric_kl(a, b).item() > 0


def test_matches_fairseq_formula_on_random_logits() -> None:
    torch.manual_seed(1)
    a, b = torch.randn(3, 5, 11), torch.randn(3, 5, 11)
    ref = (F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="sum")
           + F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="sum")) / a.size(0)
    assert symmetric_kl(a, b).item() == pytest.approx(ref.item(), abs=1e-5)


def test_btv_with_padding_official_sums_padding_masked_does_not() -> None:
    noised = torch.tensor([[P_LOGITS, Q_LOGITS], [P_LOGITS, P_LOGITS]])  # (B=2, T=2, V=2)
    clean = torch.tensor([[Q_LOGITS, P_LOGITS], [P_LOGITS, Q_LOGITS]])
    padding = torch.tensor([[False, True], [False, True]])  # second position of each row is padding
    assert symmetric_kl(noised, clean).item() == pytest.approx(3 * SYMM / 2, abs=TOL)
    assert symmetric_kl(noised, clean, padding_mask=padding).item() == pytest.approx(SYMM / 2, abs=TOL)


def test_float32_and_both_sides_receive_gradient() -> None:
    a = torch.randn(2, 3, dtype=torch.float16, requires_grad=True)
    b = torch.randn(2, 3, dtype=torch.float16, requires_grad=True)
    kl = symmetric_kl(a, b)
    assert kl.dtype == torch.float32
    kl.backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert b.grad is not None and b.grad.abs().sum() > 0


def test_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"one shape"):
        symmetric_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"padding_mask must have shape \(2, 3\)"):
        symmetric_kl(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), padding_mask=torch.zeros(2, 4, dtype=torch.bool))


def test_classification_loss_is_mean_ce_plus_lambda_mean_kl() -> None:
    torch.manual_seed(2)
    clean, noised = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 1])
    out = r3f_classification_loss(clean, noised, labels, r3f_lambda=0.7)
    expected = F.cross_entropy(clean, labels) + 0.7 * symmetric_kl(noised, clean)
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert out.task_loss.item() == pytest.approx(F.cross_entropy(clean, labels).item(), abs=1e-6)


def test_classification_loss_accumulates_like_one_batch() -> None:
    torch.manual_seed(3)
    clean, noised, labels = torch.randn(6, 3), torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    full = r3f_classification_loss(clean, noised, labels, r3f_lambda=1.0).loss
    halves = sum(r3f_classification_loss(clean[s], noised[s], labels[s], r3f_lambda=1.0, num_items=6).loss
                 for s in (slice(0, 2), slice(2, 6)))
    assert halves.item() == pytest.approx(full.item(), abs=1e-5)


def test_regression_adds_no_kl() -> None:
    clean = torch.randn(4, 1, requires_grad=True)
    noised = torch.randn(4, 1, requires_grad=True)
    labels = torch.rand(4)
    out = r3f_classification_loss(clean, noised, labels, r3f_lambda=5.0, regression=True)
    assert out.loss.item() == pytest.approx(F.mse_loss(clean.view(-1), labels).item(), abs=1e-6)
    # softmax over a single output is constant 1, so the KL fairseq computes for regression is always 0
    assert out.symm_kl.item() == 0.0
    out.loss.backward()
    assert noised.grad is None


def _seq2seq_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(4)
    clean, noised = torch.randn(2, 4, 9), torch.randn(2, 4, 9)
    labels = torch.tensor([[3, 5, 1, -100], [2, 2, -100, -100]])
    return clean, noised, labels


def test_seq2seq_label_smoothing_matches_transformers_label_smoother() -> None:
    clean, noised, labels = _seq2seq_case()
    out = r3f_seq2seq_loss(clean, noised, labels, r3f_lambda=0.0, label_smoothing=0.1)
    reference = LabelSmoother(epsilon=0.1)({"logits": clean}, labels)
    assert out.loss.item() == pytest.approx(reference.item(), abs=1e-5)


def test_seq2seq_official_scaling_per_token_ce_plus_per_sequence_kl() -> None:
    clean, noised, labels = _seq2seq_case()
    out = r3f_seq2seq_loss(clean, noised, labels, r3f_lambda=0.5, label_smoothing=0.1)
    ce = LabelSmoother(epsilon=0.1)({"logits": clean}, labels)
    kl_all_positions = symmetric_kl(noised, clean)  # padding included, / B
    assert out.loss.item() == pytest.approx((ce + 0.5 * kl_all_positions).item(), abs=1e-5)
    assert out.symm_kl.item() == pytest.approx(kl_all_positions.item(), abs=1e-6)


def test_seq2seq_per_token_variant_masks_padding() -> None:
    clean, noised, labels = _seq2seq_case()
    out = r3f_seq2seq_loss(clean, noised, labels, r3f_lambda=0.5, kl_reduction="per_token")
    ce = F.cross_entropy(clean.view(-1, 9), labels.view(-1), ignore_index=-100)
    keep = labels.ne(-100)
    per_position = (F.kl_div(F.log_softmax(noised, -1), F.softmax(clean, -1), reduction="none")
                    + F.kl_div(F.log_softmax(clean, -1), F.softmax(noised, -1), reduction="none")).sum(-1)
    kl_per_token = per_position[keep].mean()
    assert out.loss.item() == pytest.approx((ce + 0.5 * kl_per_token).item(), abs=1e-5)
    with pytest.raises(ValueError, match="kl_reduction"):
        r3f_seq2seq_loss(clean, noised, labels, r3f_lambda=0.5, kl_reduction="mean")  # type: ignore[arg-type]


def test_config_defaults_are_fairseq_classification_defaults() -> None:
    config = R3FConfig()
    assert (config.eps, config.r3f_lambda, config.noise_type) == (1e-5, 1.0, "uniform")
    assert (config.seq2seq_kl, config.pass_mode) == ("per_sequence", "separate")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, r"eps must be > 0"),
        ({"eps": -1e-5}, r"eps must be > 0"),
        ({"eps": "1e-5"}, r"eps must be a finite number.*1\.0e-5"),
        ({"eps": float("nan")}, r"eps must be a finite number"),
        ({"eps": True}, r"eps must be a finite number"),
        ({"r3f_lambda": -0.1}, r"r3f_lambda must be >= 0"),
        ({"r3f_lambda": None}, r"r3f_lambda must be a finite number"),
        ({"noise_type": "gaussian"},
         r"noise_type must be one of 'uniform', 'normal', 'none', 'neftune'; got 'gaussian'"),
        ({"seq2seq_kl": "mean"}, r"seq2seq_kl must be one of 'per_sequence', 'per_token'"),
        ({"pass_mode": "twice"}, r"pass_mode must be one of 'separate', 'concat'"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        R3FConfig(**kwargs)


def test_config_accepts_zero_lambda_and_normal_noise() -> None:
    assert R3FConfig(r3f_lambda=0, noise_type="normal").r3f_lambda == 0
