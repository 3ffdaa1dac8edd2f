"""Tiny Hugging Face models and tokenizers built locally, for the smoke profile and the tests.

Nothing here touches the Hub: the tokenizer is a byte-level BPE trained with ``tokenizers`` on the given
texts (plus a small built-in corpus), and the models are built from configs with random weights. With the
same ``seed`` and texts, the same model and tokenizer come out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    BartConfig,
    BertConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    T5Config,
    XLMRobertaConfig,
)

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

# a few sentences so that a tokenizer trained on tiny data still covers common English
_BASE_CORPUS = (
    "the quick brown fox jumps over the lazy dog .",
    "a man is playing a guitar on the street while people walk by .",
    "the company said on monday that profits rose in the third quarter .",
    "she did not think the movie was good , but her friends loved it .",
    "scientists found that the new method works better than the old one .",
    "today i learned that you should never leave the oven on when you go out .",
    "police said two people were hurt in the accident on the highway .",
    "is this sentence a paraphrase of that one ? yes , it is .",
)

# name -> (config class, sequence-classification, seq2seq or causal_lm)
TINY_ARCHITECTURES: dict[str, tuple[type[PretrainedConfig], str]] = {
    "tiny-roberta": (RobertaConfig, "classification"),
    "tiny-xlmr": (XLMRobertaConfig, "classification"),
    "tiny-bert": (BertConfig, "classification"),
    "tiny-bart": (BartConfig, "seq2seq"),
    "tiny-bart-classifier": (BartConfig, "classification"),
    "tiny-t5": (T5Config, "seq2seq"),
    "tiny-llama": (LlamaConfig, "causal_lm"),  # decoder-only (the sft family); its tokenizer adds <s> only
}


def train_tiny_tokenizer(texts: Iterable[str] = (), vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (RoBERTa/BART special tokens) on ``texts`` and a small base corpus."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [*_BASE_CORPUS, *texts]
    tok.train_from_iterator(corpus, trainer=trainer)
    # positional arguments: the keyword names differ between tokenizers versions
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), False, False
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )


def _config(
    name: str, tokenizer: PreTrainedTokenizerFast, num_labels: int | None, dropout: float,
    head_dropout: float | None = None,
) -> PretrainedConfig:
    config_cls, _ = TINY_ARCHITECTURES[name]
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if num_labels is not None:
        ids["num_labels"] = num_labels
    if config_cls is BartConfig:
        return BartConfig(
            d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=1024, dropout=dropout,
            attention_dropout=dropout, activation_dropout=0.0,
            classifier_dropout=dropout if head_dropout is None else head_dropout,
            decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id,
            scale_embedding=False, **ids,
        )
    if config_cls is LlamaConfig:
        return LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=512, attention_dropout=dropout, tie_word_embeddings=False, **ids,
        )
    if config_cls is T5Config:
        return T5Config(
            d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4, dropout_rate=dropout,
            decoder_start_token_id=tokenizer.pad_token_id, **ids,
        )
    return config_cls(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=514 if config_cls is not BertConfig else 512, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, type_vocab_size=1 if config_cls is not BertConfig else 2,
        classifier_dropout=head_dropout, **ids,
    )


def build_tiny_model(
    name: str,
    *,
    texts: Sequence[str] = (),
    num_labels: int | None = None,
    seed: int = 0,
    dropout: float = 0.1,
    vocab_size: int = 600,
    head_dropout: float | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Build ``(model, tokenizer)`` for one of :data:`TINY_ARCHITECTURES`, deterministically from ``seed``.

    Classification architectures get a sequence-classification head with ``num_labels`` outputs
    (``num_labels=1`` is a regression head); seq2seq ones a conditional-generation head; ``tiny-llama`` a
    causal-LM head (Llama architecture: RMSNorm, rotary positions, grouped-query attention, SwiGLU).
    ``head_dropout``: the classification head's dropout (``classifier_dropout``; None: the hidden dropout, HF's
    default).
    """
    if name not in TINY_ARCHITECTURES:
        raise ValueError(f"unknown tiny model {name!r}; choose one of {sorted(TINY_ARCHITECTURES)}")
    kind = TINY_ARCHITECTURES[name][1]
    if kind == "classification" and num_labels is None:
        raise ValueError(f"{name} is a classifier: pass num_labels (1 for a regression head)")
    tokenizer = train_tiny_tokenizer(texts, vocab_size=vocab_size)
    if kind == "causal_lm":  # Llama-style: <s> before the text, no </s> after it (SFT appends EOS to completions)
        bos = tokenizer.bos_token
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tokenizer.bos_token_id)])
    config = _config(name, tokenizer, num_labels if kind == "classification" else None, dropout, head_dropout)
    if kind == "classification" and num_labels == 1:
        config.problem_type = "regression"
    torch.manual_seed(seed)
    auto = {"classification": AutoModelForSequenceClassification, "seq2seq": AutoModelForSeq2SeqLM,
            "causal_lm": AutoModelForCausalLM}[kind]
    model = auto.from_config(config)
    return model, tokenizer
