"""The steps of ``notebooks/summarization.ipynb`` (Table 4), one call each.

resolve config → load data → build model → tokenize → build trainer → train (resume; best checkpoint by
validation loss, like fairseq's ``checkpoint_best.pt``) → decode the test split with the dataset's beam
settings → ROUGE → results.json.

Methods (paper, Table 4): ``standard`` = the "BART" row, BART fine-tuned with label-smoothed cross-entropy
(0.1) on fairseq's BART summarization recipe (Adam (0.9, 0.999), ε 1e-8, lr 3e-5, polynomial decay after
warmup, weight decay 0.01, gradient clipping 0.1, sources truncated to 1024 tokens); ``r3f`` = "BART+R3F",
the same plus the R3F term of fairseq's ``label_smoothed_cross_entropy_r3f`` (:class:`r3f_utils.R3FSeq2SeqTrainer`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)
from transformers import set_seed as hf_set_seed

from r3f_utils.data.summarization import (
    SUMMARIZATION_DATASETS,
    load_summarization,
    reference_text,
    target_text,
)
from r3f_utils.experiments import checkpoints
from r3f_utils.experiments.splits import TextSplits
from r3f_utils.methods.collators import FairseqSeq2SeqCollator
from r3f_utils.models import configure_threads, load_model_and_tokenizer
from r3f_utils.package_data import fixtures_dir
from r3f_utils.params import FIXTURES, SummarizationParams, resolve
from r3f_utils.params import check_parameter as _check
from r3f_utils.rouge import ROUGE_TYPES, compute_rouge

__all__ = [
    "DECODING",
    "FIXTURES",
    "SUMMARIZATION_METHODS",
    "SummarizationConfig",
    "SummarizationData",
    "build_summarization_model",
    "build_summarization_trainer",
    "generate_summaries",
    "generation_kwargs",
    "load_summarization_data",
    "remove_checkpoints",
    "resolve_summarization_config",
    "run_extra",
    "score_summaries",
    "show_examples",
    "tokenize_summarization",
    "train_with_resume",
]

SUMMARIZATION_METHODS = ("standard", "r3f")

# Decoding per dataset, used for every decoding parameter left at None. Lengths count generated BPE tokens
# as fairseq's --min-len/--max-len-b do (see generation_kwargs).
DECODING: dict[str, dict[str, float | int]] = {
    # fairseq examples/bart README, CNN/DM: beam 4, lenpen 2.0, max_len_b 140, min_len 55, no_repeat_ngram 3
    "cnn_dailymail": {
        "num_beams": 4,
        "length_penalty": 2.0,
        "min_length": 55,
        "max_length": 140,
        "no_repeat_ngram_size": 3,
    },
    # not published (paper, BART, fairseq): this project's choice for ~10-word headlines
    "gigaword": {"num_beams": 4, "length_penalty": 1.0, "min_length": 1, "max_length": 32, "no_repeat_ngram_size": 3},
    # not published: this project's choice for ~20-30-word TL;DRs
    "reddit_tifu": {
        "num_beams": 4,
        "length_penalty": 1.0,
        "min_length": 10,
        "max_length": 128,
        "no_repeat_ngram_size": 3,
    },
}


class SummarizationConfig(SummarizationParams):
    """Every setting of one Table 4 run; the fields are :class:`r3f_utils.params.SummarizationParams`' (field
    names = notebook parameter names = registry parameter names)."""

    @property
    def checkpoint_dir(self) -> Path:
        """Where the trainer keeps checkpoints (resume and best-checkpoint selection)."""
        return Path(self.output_dir) / "checkpoints"

    @property
    def dataset_dir(self) -> str | None:
        """The folder holding ``<split>.jsonl`` of this dataset, or None for the Hub."""
        return None if self.data_dir is None else str(Path(self.data_dir) / self.dataset)

    def decoding(self) -> dict[str, float | int]:
        """The decoding settings in effect: explicit parameters over :data:`DECODING` of the dataset."""
        recipe = DECODING[self.dataset]
        return {k: recipe[k] if getattr(self, k) is None else getattr(self, k) for k in recipe}

    def r3f_config(self) -> Any:
        """:class:`r3f_utils.R3FConfig` for ``r3f``, None for ``standard``."""
        if self.method != "r3f":
            return None
        from r3f_utils import R3FConfig

        return R3FConfig(eps=self.eps, r3f_lambda=self.r3f_lambda, noise_type=self.noise_type)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters for results.json, with the decoding settings actually used."""
        return {**self.model_dump(), **self.decoding(), "rouge_l": "rougeLsum (summary-level, one sentence per line)"}


def _validate(cfg: SummarizationConfig) -> SummarizationConfig:
    """What the parameter class cannot check alone: fields that depend on each other, the profile's needs."""
    _check(
        cfg.warmup_updates <= cfg.max_updates,
        "warmup_updates",
        cfg.warmup_updates,
        f"an integer in [0, max_updates={cfg.max_updates}]",
    )
    decoding = cfg.decoding()
    _check(
        decoding["min_length"] <= decoding["max_length"],
        "min_length",
        decoding["min_length"],
        f"at most max_length={decoding['max_length']}",
    )
    _check(not (cfg.fp16 and cfg.bf16), "fp16", cfg.fp16, "fp16 and bf16 exclude each other")
    if cfg.profile == "paper":
        _check(
            not cfg.model_name.startswith("tiny-"),
            "model_name",
            cfg.model_name,
            "the paper profile needs a pretrained model (facebook/bart-large), not a tiny smoke model",
        )
        _check(
            cfg.data_dir != FIXTURES,
            "data_dir",
            cfg.data_dir,
            "the paper profile needs the real data: None (the Hub) or a folder with the full files",
        )
    if cfg.data_dir == FIXTURES:
        path = fixtures_dir("summarization")
        if not path.is_dir():
            raise FileNotFoundError(
                f"data_dir={FIXTURES!r} means the smoke fixtures in {path}, which do not exist (an install "
                "without package data): pass data_dir=<your folder> or None for the Hub"
            )
        cfg.data_dir = str(path)
    return cfg


def resolve_summarization_config(**params: Any) -> SummarizationConfig:
    """Build and validate the run's :class:`SummarizationConfig` from the notebook's parameters.

    The parameters are :class:`r3f_utils.params.SummarizationParams` (missing ones take its defaults). Unknown
    names raise TypeError (papermill only warns); invalid values raise ValueError naming them.
    """
    params = resolve(SummarizationParams, params).to_params()
    if params.get("output_dir") is None:  # a fresh folder for interactive runs (results.json is written once)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        params["output_dir"] = f"runs/notebook/{params.get('dataset')}-{params.get('method')}-{stamp}"
    return _validate(SummarizationConfig.model_construct(**params))


class SummarizationData(TextSplits):
    """The three splits of a run, each with ``source`` and ``target`` columns; ``test`` is ``cfg.eval_split``."""

    COLUMNS = ("source", "target")


def load_summarization_data(cfg: SummarizationConfig) -> SummarizationData:
    """Train, validation and the decoded split, from ``cfg.data_dir`` or the Hub (same code path)."""
    kwargs = {"data_dir": cfg.dataset_dir, "split_seed": cfg.reddit_split_seed}
    return SummarizationData(
        train=load_summarization(cfg.dataset, "train", max_samples=cfg.max_train_samples, **kwargs),
        validation=load_summarization(cfg.dataset, "validation", max_samples=cfg.max_eval_samples, **kwargs),
        test=load_summarization(cfg.dataset, cfg.eval_split, max_samples=cfg.max_eval_samples, **kwargs),
    )


def build_summarization_model(
    cfg: SummarizationConfig, texts: Sequence[str] = ()
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Seed everything and load the seq2seq model; ``texts`` train the tokenizer of a ``tiny-*`` smoke model.

    A ``tiny-*`` model runs on one CPU thread (:func:`r3f_utils.models.configure_threads`)."""
    configure_threads(cfg.model_name)
    hf_set_seed(cfg.seed)
    return load_model_and_tokenizer(cfg.model_name, head="seq2seq", texts=texts, seed=cfg.seed)


def tokenize_summarization(
    data: SummarizationData, tokenizer: PreTrainedTokenizerBase, cfg: SummarizationConfig
) -> dict[str, datasets.Dataset]:
    """Token ids: sources truncated to ``max_source_length``, targets (one line) to ``max_target_length``.

    The decoded split gets no labels (generation needs only the source)."""

    def encode(batch: Mapping[str, list[str]], with_labels: bool) -> Any:
        enc = tokenizer(batch["source"], truncation=True, max_length=cfg.max_source_length)
        if with_labels:
            targets = [target_text(t) for t in batch["target"]]
            enc["labels"] = tokenizer(text_target=targets, truncation=True, max_length=cfg.max_target_length)[
                "input_ids"
            ]
        return enc

    def run(ds: datasets.Dataset, with_labels: bool) -> datasets.Dataset:
        return ds.map(
            encode,
            batched=True,
            fn_kwargs={"with_labels": with_labels},
            remove_columns=ds.column_names,
            keep_in_memory=True,
        )

    return {"train": run(data.train, True), "validation": run(data.validation, True), "test": run(data.test, True)}


def build_training_arguments(cfg: SummarizationConfig, num_train_examples: int) -> Seq2SeqTrainingArguments:
    """BART's fairseq summarization recipe as ``Seq2SeqTrainingArguments``: label smoothing, polynomial
    (linear) decay to 0 after ``warmup_updates``, Adam, clipping; validation loss every ``eval_steps``
    (default once per epoch), keeping the best and the last checkpoint and reloading the best at the end."""
    per_update = cfg.batch_size * cfg.gradient_accumulation_steps
    eval_steps = min(cfg.eval_steps or math.ceil(num_train_examples / per_update), cfg.max_updates)
    return Seq2SeqTrainingArguments(
        **checkpoints.checkpointed_run_arguments(cfg.checkpoint_dir, eval_steps=eval_steps, seed=cfg.seed,
                                                 fp16=cfg.fp16, bf16=cfg.bf16, profile=cfg.profile,
                                                 report_to=cfg.report_to),
        max_steps=cfg.max_updates,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_updates,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        adam_epsilon=cfg.adam_epsilon,
        max_grad_norm=cfg.max_grad_norm,
        label_smoothing_factor=cfg.label_smoothing,
        metric_for_best_model="loss",  # fairseq's checkpoint_best.pt: lowest validation loss
        greater_is_better=False,
        predict_with_generate=True,
    )


def build_summarization_trainer(
    cfg: SummarizationConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tokenized: Mapping[str, datasets.Dataset],
) -> Seq2SeqTrainer:
    """An :class:`r3f_utils.R3FSeq2SeqTrainer` (``r3f=None`` for ``standard``) over the tokenized splits."""
    from r3f_utils import R3FSeq2SeqTrainer

    collator = FairseqSeq2SeqCollator(  # fairseq's decoder padding: pad ids + decoder_attention_mask
        tokenizer, model=model, label_pad_token_id=-100, pad_to_multiple_of=8 if (cfg.fp16 or cfg.bf16) else None
    )
    return R3FSeq2SeqTrainer(
        model=model,
        args=build_training_arguments(cfg, len(tokenized["train"])),
        r3f=cfg.r3f_config(),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=collator,
    )


def train_with_resume(trainer: Seq2SeqTrainer, cfg: SummarizationConfig) -> dict[str, Any]:
    """Train, resuming from the last checkpoint in ``cfg.checkpoint_dir`` when an earlier run was interrupted;
    the checkpoint with the lowest validation loss is loaded back at the end."""
    return checkpoints.train_with_resume(trainer, cfg.checkpoint_dir, best_metric_key="best_validation_loss")


def generation_kwargs(cfg: SummarizationConfig) -> dict[str, Any]:
    """``generate()`` arguments for the run's decoding settings.

    fairseq's ``--min-len``/``--max-len-b`` count the generated tokens (BART's forced ``<s>`` included),
    without the decoder start token and the final ``</s>``; ``min_new_tokens=min_length`` and
    ``max_new_tokens=max_length + 1`` say the same in transformers (for bart-large-cnn this equals the
    ported config's ``min_length=56, max_length=142``). ``early_stopping=True`` ends a beam search once
    ``num_beams`` hypotheses are finished, as fairseq does.
    """
    d = cfg.decoding()
    return {
        "num_beams": d["num_beams"],
        "length_penalty": d["length_penalty"],
        "min_new_tokens": d["min_length"],
        "max_new_tokens": d["max_length"] + 1,
        "no_repeat_ngram_size": d["no_repeat_ngram_size"],
        "early_stopping": True,
        "max_length": None,
    }


def generate_summaries(
    trainer: Seq2SeqTrainer, tokenized: Mapping[str, datasets.Dataset], cfg: SummarizationConfig
) -> list[str]:
    """Beam-search summaries of the decoded split (``cfg.eval_split``), as plain text, in dataset order."""
    output = trainer.predict(tokenized["test"], **generation_kwargs(cfg))
    ids = np.asarray(output.predictions)
    tokenizer = trainer.processing_class
    ids = np.where(ids < 0, tokenizer.pad_token_id, ids)  # batches are padded with -100 when concatenated
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def score_summaries(predictions: Sequence[str], data: SummarizationData) -> dict[str, float]:
    """ROUGE-1/2/L/Lsum F ×100 (stemmed; rougeLsum = the paper's ROUGE-L) against the decoded split."""
    references = [reference_text(t) for t in data.test["target"]]
    return compute_rouge(predictions, references, rouge_types=ROUGE_TYPES)


def run_extra(
    cfg: SummarizationConfig, data: SummarizationData, train_summary: Mapping[str, Any], predictions: Sequence[str]
) -> dict[str, Any]:
    """What results.json keeps besides the metrics: sample counts, training summary, decoding, lengths."""
    words = [len(p.split()) for p in predictions]
    return {
        "dataset": cfg.dataset,
        "method": cfg.method,
        "hub_id": SUMMARIZATION_DATASETS[cfg.dataset].hub_id,
        "samples": data.sizes(),
        "eval_split": cfg.eval_split,
        "train": dict(train_summary),
        "decoding": generation_kwargs(cfg),
        "mean_summary_words": float(np.mean(words)) if words else 0.0,
        "examples": [
            {"prediction": p, "reference": t} for p, t in zip(predictions[:3], data.test["target"][:3], strict=False)
        ],
    }


def show_examples(data: SummarizationData, predictions: Sequence[str], n: int = 3, width: int = 300) -> Any:
    """A table of the first ``n`` generated summaries beside their references (and the start of the source)."""
    import pandas as pd

    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = [
        {"source": cut(s), "reference": cut(target_text(t)), "generated": cut(p)}
        for s, t, p in zip(data.test["source"][:n], data.test["target"][:n], predictions[:n], strict=False)
    ]
    return pd.DataFrame(rows)


def remove_checkpoints(cfg: SummarizationConfig) -> None:
    """Delete ``cfg.checkpoint_dir`` once the results are written, unless ``keep_checkpoints``."""
    checkpoints.remove_checkpoints(cfg.checkpoint_dir, keep=cfg.keep_checkpoints)


def run(params: dict[str, Any]) -> tuple[SummarizationConfig, dict[str, float], dict[str, Any]]:
    """The notebook's steps in one call (``python -m r3f_utils train summarization``): ``(cfg, metrics, extra)``."""
    cfg = resolve_summarization_config(**params)
    data = load_summarization_data(cfg)
    model, tokenizer = build_summarization_model(cfg, data.texts())
    tokenized = tokenize_summarization(data, tokenizer, cfg)
    trainer = build_summarization_trainer(cfg, model, tokenizer, tokenized)
    train_summary = train_with_resume(trainer, cfg)
    predictions = generate_summaries(trainer, tokenized, cfg)
    metrics = score_summaries(predictions, data)
    return cfg, metrics, run_extra(cfg, data, train_summary, predictions)
