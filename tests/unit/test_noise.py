"""Noise sampling and the embedding hook: where noise lands, where gradient flows, and cleanup."""

from __future__ import annotations

import pytest
import torch

from r3f_utils import noised_input_embeddings, sample_noise
from r3f_utils.tiny_models import build_tiny_model

EPS = 1e-3
TEXTS = ["the cat sat on the mat .", "a dog ran in the park today ."]


def _batch(tokenizer, texts=TEXTS):
    return tokenizer(texts, padding=True, return_tensors="pt")


def test_uniform_noise_within_eps_and_normal_std_is_eps() -> None:
    like = torch.zeros(64, 32, 48, dtype=torch.float64)
    uniform = sample_noise(like, EPS, "uniform")
    assert uniform.abs().max().item() <= EPS
    assert uniform.std().item() == pytest.approx(EPS / 3**0.5, rel=0.02)  # std of U(-e, e)
    normal = sample_noise(like, EPS, "normal")
    assert normal.std().item() == pytest.approx(EPS, rel=0.02)
    assert normal.mean().item() == pytest.approx(0.0, abs=EPS * 0.02)
    assert uniform.shape == like.shape and uniform.dtype == like.dtype and uniform.device == like.device


def test_noise_is_fresh_at_every_call() -> None:
    like = torch.zeros(4, 4)
    assert not torch.equal(sample_noise(like, EPS, "uniform"), sample_noise(like, EPS, "uniform"))
    with pytest.raises(ValueError, match="noise_type must be one of"):
        sample_noise(like, EPS, "laplace")


def _capture_embedding_outputs(model):
    """Record every token-embedding output (encoder and decoder modules, shared or tied), in call order."""
    seen: list[torch.Tensor] = []
    modules = {id(m): m for m in model.modules() if isinstance(m, torch.nn.Embedding)
               and m.weight is model.get_input_embeddings().weight}
    handles = [m.register_forward_hook(lambda m, a, out: seen.append(out.detach().clone())) for m in modules.values()]

    class _Handles:
        def remove(self) -> None:
            for h in handles:
                h.remove()

    return seen, _Handles()


@pytest.mark.parametrize("name", ["tiny-roberta", "tiny-xlmr", "tiny-bert", "tiny-bart-classifier"])
def test_encoder_input_is_noised_within_eps(name: str) -> None:
    model, tok = build_tiny_model(name, num_labels=2, dropout=0.0)
    model.eval()
    batch = _batch(tok)
    clean = model.get_input_embeddings()(batch["input_ids"]).detach()
    with noised_input_embeddings(model, eps=EPS, noise_type="uniform", detach=True):
        seen, handle = _capture_embedding_outputs(model)  # registered after the noise hook: sees noised output
        model(**batch)
        handle.remove()
    diff = seen[0] - clean
    assert diff.abs().max().item() <= EPS * 1.0001
    assert diff.abs().max().item() > EPS / 10


def test_bart_decoder_embeddings_receive_no_noise() -> None:
    model, tok = build_tiny_model("tiny-bart", dropout=0.0)
    batch = _batch(tok)
    labels = tok(text_target=["a cat .", "a dog ."], padding=True, return_tensors="pt")["input_ids"]
    decoder_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)
    embed = model.get_input_embeddings()
    with noised_input_embeddings(model, eps=EPS, noise_type="normal", detach=False):
        seen, handle = _capture_embedding_outputs(model)
        model(**batch, decoder_input_ids=decoder_ids)
        handle.remove()
    assert len(seen) == 2  # one encoder call, one decoder call on the shared module
    assert not torch.equal(seen[0], embed(batch["input_ids"]).detach())
    assert torch.equal(seen[1], embed(decoder_ids).detach())


def test_rows_noises_only_the_second_half() -> None:
    model, tok = build_tiny_model("tiny-roberta", num_labels=2)
    ids = _batch(tok)["input_ids"]
    doubled = torch.cat([ids, ids])
    with noised_input_embeddings(model, eps=EPS, noise_type="uniform", detach=True, rows=slice(2, None)):
        seen, handle = _capture_embedding_outputs(model)
        model(input_ids=doubled)
        handle.remove()
    clean = model.get_input_embeddings()(doubled).detach()
    assert torch.equal(seen[0][:2], clean[:2])
    assert not torch.equal(seen[0][2:], clean[2:])


def _gradient_reaches_embedding_lookup(model, embeddings, detach: bool, **inputs) -> bool:
    """Run one noised pass and say whether gradient flows back into the raw embedding lookup (its weight)."""
    reached: list[bool] = []

    def watch(_m, _a, out):  # registered before the noise hook, so it sees the raw lookup output
        out.register_hook(lambda g: reached.append(True))

    handle = embeddings.register_forward_hook(watch)
    with noised_input_embeddings(model, eps=EPS, noise_type="uniform", detach=detach):
        model(**inputs).logits.sum().backward()
    handle.remove()
    return bool(reached)


def test_classification_detach_blocks_embedding_gradient_through_noised_pass() -> None:
    model, tok = build_tiny_model("tiny-roberta", num_labels=2, dropout=0.0)
    assert not _gradient_reaches_embedding_lookup(model, model.get_input_embeddings(), True, **_batch(tok))
    assert model.get_input_embeddings().weight.grad is None
    assert model.classifier.out_proj.weight.grad is not None  # other parameters still learn from this pass


def test_seq2seq_noised_pass_sends_gradient_into_encoder_embeddings() -> None:
    model, tok = build_tiny_model("tiny-bart", dropout=0.0)
    inputs = {**_batch(tok), "decoder_input_ids": _batch(tok)["input_ids"]}
    encoder_embeddings = model.get_encoder().get_input_embeddings()
    assert _gradient_reaches_embedding_lookup(model, encoder_embeddings, False, **inputs)
    assert not _gradient_reaches_embedding_lookup(model, encoder_embeddings, True, **inputs)


def test_hooks_are_removed_even_when_forward_raises() -> None:
    model, tok = build_tiny_model("tiny-bart", dropout=0.0)
    encoder = model.get_encoder()
    embeddings = encoder.get_input_embeddings()
    with pytest.raises(RuntimeError, match="boom"), noised_input_embeddings(
        model, eps=EPS, noise_type="uniform", detach=False
    ):
        encoder.layers[0].register_forward_pre_hook(lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
        model(**_batch(tok), decoder_input_ids=_batch(tok)["input_ids"])
    assert not embeddings._forward_hooks
    assert not encoder._forward_hooks and not encoder._forward_pre_hooks


def test_model_without_input_embeddings_is_refused() -> None:
    with pytest.raises(ValueError, match="has no input embedding module"), noised_input_embeddings(
        torch.nn.Linear(2, 2), eps=EPS, noise_type="uniform", detach=True
    ):
        pass
