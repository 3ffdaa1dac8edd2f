"""R3F for causal LMs (pure torch): the seq2seq criterion on next-token distributions, chunked; NEFTune noise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from r3f_utils import R3FConfig, neftune_noise, r3f_causal_lm_loss
from r3f_utils.methods.r3f import symmetric_kl

V = 11


def _batch(seed: int = 0, batch: int = 3, length: int = 7):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randn(batch, length, V, generator=g, requires_grad=True)
    noised = torch.randn(batch, length, V, generator=g, requires_grad=True)
    labels = torch.randint(0, V, (batch, length), generator=g)
    labels[0, :3] = -100  # a prompt
    labels[1, 5:] = -100  # padding
    labels[2, :] = -100
    labels[2, 4] = 3  # one completion token
    return clean, noised, labels


def _reference(clean, noised, labels, lam, smoothing=0.0, per_token=False):
    """Written out: shift, mask the positions without loss, fairseq's seq2seq join."""
    c, n, t = clean[:, :-1].float(), noised[:, :-1].float(), labels[:, 1:]
    keep = t.ne(-100)
    lp = F.log_softmax(c, -1)
    nll = -lp.gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    task = (((1 - smoothing) * nll + smoothing / V * -lp.sum(-1)) * keep).sum()
    lq = F.log_softmax(n, -1)
    kl_pos = (lp.exp() * (lp - lq)).sum(-1) + (lq.exp() * (lq - lp)).sum(-1)
    kl_sum = (kl_pos * keep).sum()
    ntok = keep.sum()
    if per_token:
        return (task + lam * kl_sum) / ntok, kl_sum / ntok
    symm = kl_sum / clean.size(0)
    return (task + lam * symm * ntok) / ntok, symm


@pytest.mark.parametrize("per_token", [False, True])
@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_loss_is_the_seq2seq_criterion_on_next_tokens_at_any_chunk_size(per_token, chunk) -> None:
    clean, noised, labels = _batch()
    got = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=0.7, label_smoothing=0.1, chunk_size=chunk,
                             kl_reduction="per_token" if per_token else "per_sequence")
    want, symm = _reference(clean, noised, labels, 0.7, 0.1, per_token)
    assert got.loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert got.symm_kl.item() == pytest.approx(symm.item(), rel=1e-5)
    g_got = torch.autograd.grad(got.loss, (clean, noised))
    g_want = torch.autograd.grad(want, (clean, noised))
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert g_got[1].abs().sum() > 0  # neither side detached


def test_positions_without_loss_do_not_count() -> None:
    clean, noised, labels = _batch()
    base = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0)
    clean2, noised2 = clean.detach().clone(), noised.detach().clone()
    g = torch.Generator().manual_seed(1)
    clean2[0, :2] += 5.0 * torch.randn(2, V, generator=g)  # positions 0, 1 predict the prompt tokens 1, 2 (-100)
    noised2[1, 4:] -= 3.0 * torch.randn(3, V, generator=g)  # positions 4.. predict padding
    noised2[:, -1] += 7.0 * torch.randn(3, V, generator=g)  # the last position predicts nothing
    moved = r3f_causal_lm_loss(clean2, noised2, labels, r3f_lambda=1.0)
    assert moved.loss.item() == pytest.approx(base.loss.item(), rel=1e-6)
    clean2[0, 3, 0] += 1.0  # a completion position does count
    assert r3f_causal_lm_loss(clean2, noised2, labels, r3f_lambda=1.0).loss.item() != pytest.approx(base.loss.item())


def test_shift_labels_are_used_as_given() -> None:
    clean, noised, labels = _batch()
    shifted = torch.cat([labels[:, 1:], torch.full((3, 1), -100)], dim=1)
    a = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0)
    b = r3f_causal_lm_loss(clean, noised, torch.zeros_like(labels), r3f_lambda=1.0, shift_labels=shifted)
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)


def test_micro_batches_of_a_step_sum_to_the_whole_batch() -> None:
    clean, noised, labels = _batch()
    whole = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0).loss
    tokens = labels[:, 1:].ne(-100).sum()
    parts = sum(r3f_causal_lm_loss(clean[h], noised[h], labels[h], r3f_lambda=1.0, num_items=tokens,
                                   num_sequences=3).loss for h in (slice(0, 1), slice(1, 3)))
    assert parts.item() == pytest.approx(whole.item(), rel=1e-6)


def test_kl_in_float32_under_bf16_autocast() -> None:
    clean, noised, labels = _batch()
    c16 = (clean.detach() * 0.01).bfloat16().requires_grad_()  # near-equal distributions: bf16 KL would round
    n16 = (clean.detach() * 0.01 + 1e-3 * noised.detach()).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = r3f_causal_lm_loss(c16, n16, labels, r3f_lambda=1.0)
    fp32 = r3f_causal_lm_loss(c16.detach().float(), n16.detach().float(), labels, r3f_lambda=1.0)
    _, symm = _reference(c16.float(), n16.float(), labels, 1.0)
    assert got.loss.dtype == torch.float32
    assert got.symm_kl.item() == fp32.symm_kl.item() and got.loss.item() == fp32.loss.item()
    assert got.symm_kl.item() == pytest.approx(symm.item(), rel=5e-2)  # ~1e-6: a bf16 KL would round it away
    got.loss.backward()
    assert c16.grad.dtype == torch.bfloat16 and torch.isfinite(c16.grad).all()


def test_a_batch_without_loss_tokens_backpropagates_zero() -> None:
    clean, noised, labels = _batch()
    labels[:] = -100
    out = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0, num_items=5)
    out.loss.backward()
    assert out.loss.item() == 0.0 and clean.grad.abs().sum() == 0


def test_bad_shapes_are_refused() -> None:
    clean, noised, labels = _batch()
    with pytest.raises(ValueError, match="labels must have shape"):
        r3f_causal_lm_loss(clean, noised, labels[:, 1:], r3f_lambda=1.0)
    with pytest.raises(ValueError, match="one shape"):
        r3f_causal_lm_loss(clean, noised[:, 1:], labels, r3f_lambda=1.0)
    with pytest.raises(ValueError, match="kl_reduction"):
        r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0, kl_reduction="mean")


def test_chunked_loss_agrees_with_symmetric_kl() -> None:
    clean, noised, labels = _batch()
    labels = torch.randint(0, V, labels.shape)  # every position carries loss (but the last predicts nothing)
    got = r3f_causal_lm_loss(clean, noised, labels, r3f_lambda=1.0, chunk_size=2)
    assert got.symm_kl.item() == pytest.approx(symmetric_kl(noised[:, :-1], clean[:, :-1]).item(), rel=1e-5)


def test_neftune_noise_scales_with_the_real_length() -> None:
    emb = torch.zeros(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    noise = neftune_noise(emb, 5.0, mask, torch.Generator().manual_seed(0))
    assert noise[0].abs().max() <= 5.0 / math.sqrt(6 * 8) + 1e-7
    assert noise[0].abs().max() > 0.8 * 5.0 / math.sqrt(6 * 8)
    assert noise[1, :2].abs().max() <= 5.0 / math.sqrt(2 * 8) + 1e-7
    assert noise[1, :2].abs().max() > 5.0 / math.sqrt(6 * 8)  # the short sequence gets the larger noise
    assert noise[1, 2:].abs().max() == 0  # padding stays clean
    padded = neftune_noise(emb, 5.0, None, torch.Generator().manual_seed(0))  # transformers' hook: L = T
    assert padded.abs().max() <= 5.0 / math.sqrt(6 * 8) + 1e-7 and padded[1, 2:].abs().max() > 0


def test_neftune_noise_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="does not match"):
        neftune_noise(torch.zeros(2, 6, 8), 5.0, torch.ones(2, 5))
    with pytest.raises(ValueError, match="batch, length, width"):
        neftune_noise(torch.zeros(6, 8), 5.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"neftune_alpha": 0.0}, "neftune_alpha must be > 0"),
    ({"neftune_length": "max"}, "neftune_length must be one of"),
    ({"kl_chunk_size": 0}, "kl_chunk_size must be a positive integer"),
    ({"with_trainer_neftune": "yes"}, "with_trainer_neftune must be True or False"),
])
def test_config_rejects_bad_llm_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        R3FConfig(**kwargs)
