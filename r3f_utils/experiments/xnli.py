"""The steps of ``notebooks/xnli.ipynb`` (Table 3): zero-shot cross-lingual transfer on XNLI.

Fine-tune on the English training data, choose the checkpoint by English dev accuracy, report the test
accuracy of every language (``accuracy_<lang>``) and their mean (``accuracy_avg``). Training itself is the
GLUE recipe (:mod:`r3f_utils.experiments.glue`): same Trainer, optimiser, schedule, best-checkpoint selection
and resume. The paper's XNLI hyper-parameters are in its unpublished appendix; the registry's paper profile
holds this project's choice (see ``docs/glue_xnli.md``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

from r3f_utils.data.xnli import XNLI_NUM_LABELS, XNLI_TEXT_KEYS, XnliData, check_languages, load_xnli
from r3f_utils.experiments.glue import (
    RunConfig,
    build_glue_model,
    build_trainer,
    evaluate_splits,
    remove_checkpoints,
    run_extra,
    tokenize_pairs,
    train_with_resume,
    validate_config,
)
from r3f_utils.metrics import mean
from r3f_utils.params import XnliParams, resolve

__all__ = [
    "XNLI_METHODS",
    "build_xnli_model",
    "build_xnli_trainer",
    "evaluate_xnli",
    "load_xnli_data",
    "remove_checkpoints",
    "resolve_xnli_config",
    "run_extra",
    "tokenize_xnli",
    "train_with_resume",
]

XNLI_METHODS = ("standard", "r3f", "r4f")  # Table 3 has no STD++ row


def resolve_xnli_config(**params: Any) -> RunConfig:
    """Build and validate the :class:`RunConfig` of an XNLI run (``task="xnli"``) from the notebook's parameters
    (:class:`r3f_utils.params.XnliParams`; missing ones take its defaults)."""
    checked = resolve(XnliParams, params).to_params()
    checked["languages"] = check_languages(checked["languages"])
    if checked["output_dir"] is None:
        checked["output_dir"] = f"runs/notebook/xnli-{checked['method']}-{time.strftime('%Y%m%d-%H%M%S')}"
    return validate_config(RunConfig.model_construct(task="xnli", **checked), methods=XNLI_METHODS, family="xnli")


def run(params: dict[str, Any]) -> tuple[RunConfig, dict[str, float], dict[str, Any]]:
    """The notebook's steps in one call (``python -m r3f_utils train xnli``): ``(cfg, metrics, extra)``."""
    cfg = resolve_xnli_config(**params)
    data = load_xnli_data(cfg)
    model, tokenizer = build_xnli_model(cfg, data)
    tokenized = tokenize_xnli(data, tokenizer, cfg)
    trainer = build_xnli_trainer(cfg, model, tokenizer, tokenized)
    train_summary = train_with_resume(trainer, cfg)
    metrics = evaluate_xnli(trainer, tokenized)
    return cfg, metrics, run_extra(cfg, model, train_summary)


def load_xnli_data(cfg: RunConfig) -> XnliData:
    """English train/dev and the test split of each of ``cfg.languages``."""
    return load_xnli(cfg.languages, data_dir=cfg.data_dir, max_train_samples=cfg.max_train_samples,
                     max_eval_samples=cfg.max_eval_samples)


def build_xnli_model(cfg: RunConfig, data: XnliData) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A 3-way classifier (R4F: spectral-norm head); a tiny model's tokenizer is trained on ``data.texts()``."""
    return build_glue_model(cfg, XNLI_NUM_LABELS, data.texts())


def tokenize_xnli(data: XnliData, tokenizer: PreTrainedTokenizerBase, cfg: RunConfig) -> dict[str, Any]:
    """``{"train", "dev", "test": {lang: Dataset}}`` ready for the Trainer."""
    def tok(ds: Any) -> Any:
        return tokenize_pairs(ds, tokenizer, XNLI_TEXT_KEYS, cfg.max_length)

    return {"train": tok(data.train), "dev": tok(data.dev), "test": {lang: tok(ds) for lang, ds in data.test.items()}}


def build_xnli_trainer(cfg: RunConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       tokenized: Mapping[str, Any]) -> Trainer:
    """Trainer that selects the checkpoint by English dev accuracy (zero-shot: no other language is seen)."""
    return build_trainer(cfg, model, tokenizer, tokenized["train"], tokenized["dev"], metrics=("accuracy",),
                         best_metric="accuracy")


def evaluate_xnli(trainer: Trainer, tokenized: Mapping[str, Any]) -> dict[str, float]:
    """``accuracy_<lang>`` on each test split (Table 3's order) and ``accuracy_avg``, their mean.

    ``accuracy_avg`` averages the evaluated languages; it is Table 3's "Avg" when all 15 are evaluated.
    """
    per_language = evaluate_splits(trainer, tokenized["test"], ("accuracy",))
    return {**per_language, "accuracy_avg": mean(per_language)}
