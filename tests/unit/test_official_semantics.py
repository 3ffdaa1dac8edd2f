"""Official (fairseq) semantics the paper profile depends on: seq2seq decoder padding, R4F's spectral norm,
and the released RoBERTa path (``noise_type="none"``).

Budget: ~4 s (tiny models, CPU).
"""

from __future__ import annotations

import pytest
import torch
from transformers import DataCollatorForSeq2Seq

from r3f_utils.methods.collators import FairseqSeq2SeqCollator
from r3f_utils.methods.noise import noised_input_embeddings
from r3f_utils.methods.r3f import symmetric_kl
from r3f_utils.models import load_model_and_tokenizer

TEXTS = ["the cat sat on the mat", "a dog ran", "birds sing in the morning light", "rain again today"] * 10


@pytest.fixture(scope="module")
def tiny_bart():
    model, tokenizer = load_model_and_tokenizer("tiny-bart", head="seq2seq", texts=TEXTS, seed=0)
    return model.eval(), tokenizer


def _features(tokenizer) -> list[dict]:
    sources = ["the cat sat on the mat", "a dog ran", "birds sing"]
    targets = ["cat sat on the mat today", "dog", "birds sing in the morning"]
    return [{"input_ids": tokenizer(s)["input_ids"], "labels": tokenizer(text_target=t)["input_ids"]}
            for s, t in zip(sources, targets, strict=True)]


def _fairseq_logits(model, tokenizer, features, noise_seed: int | None) -> torch.Tensor:
    """fairseq's decoder computation: prev_output_tokens = [eos] + target[:-1], right-padded with pad, and
    self-attention masking future keys and padded keys (prev_output_tokens.eq(pad)); built by hand here."""
    pad, eos = tokenizer.pad_token_id, model.config.decoder_start_token_id
    width = max(len(f["labels"]) for f in features)
    prev = torch.full((len(features), width), pad)
    for i, f in enumerate(features):
        prev[i, : len(f["labels"])] = torch.tensor([eos, *f["labels"][:-1]])
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    mask4d = (causal[None] & prev.ne(pad)[:, None, :])[:, None]
    source = tokenizer.pad({"input_ids": [f["input_ids"] for f in features]}, return_tensors="pt")
    return _logits(model, {**source, "decoder_input_ids": prev, "decoder_attention_mask": mask4d}, noise_seed)


def _logits(model, batch: dict, noise_seed: int | None) -> torch.Tensor:
    batch = {k: v for k, v in batch.items() if k != "labels"}
    if noise_seed is None:
        return model(**batch).logits
    torch.manual_seed(noise_seed)
    with noised_input_embeddings(model, eps=0.5, noise_type="normal", detach=False):
        return model(**batch).logits


def test_seq2seq_collator_gives_the_fairseq_per_sequence_kl_on_a_padded_batch(tiny_bart) -> None:
    model, tokenizer = tiny_bart
    features = _features(tokenizer)
    with torch.no_grad():
        ref = symmetric_kl(_fairseq_logits(model, tokenizer, features, 0), _fairseq_logits(model, tokenizer,
                                                                                           features, None))
        batch = FairseqSeq2SeqCollator(tokenizer, model=model, label_pad_token_id=-100)(features)
        assert batch["decoder_attention_mask"].sum(1).tolist() == [len(f["labels"]) for f in features]
        ours = symmetric_kl(_logits(model, batch, 0), _logits(model, batch, None))
        plain = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)(features)
        before = symmetric_kl(_logits(model, plain, 0), _logits(model, plain, None))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert abs(before.item() - ref.item()) > 1e-4 * ref.item()  # the unmasked batch differs at padded positions


def test_r4f_default_is_torch_nn_utils_spectral_norm_one_iteration_per_forward_no_warmup() -> None:
    from torch.nn.utils import spectral_norm

    from r3f_utils.methods.r4f import apply_r4f, head_spectral_norms
    from r3f_utils.tiny_models import build_tiny_model

    model, _ = build_tiny_model("tiny-roberta", num_labels=3)
    head = model.classifier.out_proj
    reference = torch.nn.Linear(head.in_features, head.out_features)
    reference.load_state_dict(head.state_dict())
    torch.manual_seed(0)
    apply_r4f(model)
    torch.manual_seed(0)
    spectral_norm(reference)  # what fairseq's --spectral-norm-classification-head calls
    x = torch.randn(4, head.in_features)
    for training in (True, True, True, False):  # one power iteration per training forward, none in eval
        head.train(training)
        reference.train(training)
        assert torch.equal(head(x), reference(x))
    assert torch.equal(head.weight_u, reference.weight_u)
    warmed, _ = build_tiny_model("tiny-roberta", num_labels=3)
    apply_r4f(warmed, spectral_norm="parametrization")  # the named option: 15 warm-up iterations
    assert head_spectral_norms(warmed)["out_proj"] == pytest.approx(1.0, abs=1e-2)
    with pytest.raises(ValueError, match="spectral_norm must be one of"):
        apply_r4f(build_tiny_model("tiny-roberta", num_labels=3)[0], spectral_norm="power")


def test_noise_type_none_second_pass_is_a_clean_pass_with_fresh_dropout(tmp_path) -> None:
    """The released fairseq RoBERTa path: two clean passes, dropout-independent, and the same symmetric KL."""
    from transformers import TrainingArguments

    from r3f_utils import R3FConfig, R3FTrainer
    from r3f_utils.tiny_models import build_tiny_model

    model, tok = build_tiny_model("tiny-roberta", texts=TEXTS, num_labels=2)
    args = TrainingArguments(str(tmp_path), report_to=[], use_cpu=True, save_strategy="no")
    inputs = {**tok(TEXTS[:4], padding=True, return_tensors="pt"), "labels": torch.tensor([0, 1, 0, 1])}
    features = {k: v for k, v in inputs.items() if k != "labels"}
    model.train()
    trainer = R3FTrainer(model=model, args=args, r3f=R3FConfig(noise_type="none"))
    for noise_type, pass_mode in (("none", "separate"), ("none", "concat"), ("uniform", "separate")):
        trainer.r3f = R3FConfig(noise_type=noise_type, pass_mode=pass_mode)  # one Trainer (slow to build)
        torch.manual_seed(1)
        result, outputs = trainer._r3f_loss(model, inputs, None)
        torch.manual_seed(1)
        clean, second = model(**features).logits, model(**features).logits  # two plain passes
        if pass_mode == "concat":  # one doubled batch: the same dropout draws, in one call
            torch.manual_seed(1)
            both = model(**{k: torch.cat([v, v]) for k, v in features.items()}).logits
            clean, second = both[:4], both[4:]
        same = torch.allclose(result.symm_kl, symmetric_kl(second, clean).detach(), atol=1e-6)
        assert same == (noise_type == "none"), (noise_type, pass_mode)
        if noise_type == "none":
            assert torch.allclose(outputs.logits[:4], clean) and result.symm_kl > 0  # dropout differs per pass
    model.eval()
    with torch.no_grad(), noised_input_embeddings(model, eps=1.0, noise_type="none", detach=True):
        assert torch.equal(model(**features).logits, model(**features).logits)
