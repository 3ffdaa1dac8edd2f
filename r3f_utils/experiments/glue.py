"""The steps of ``notebooks/glue.ipynb`` (Table 2), one call each; XNLI (Table 3) reuses the training steps.

resolve config → load data → build model (+ R4F surgery) → tokenize → build Trainer → train (resume, best
checkpoint by the task's dev metric) → evaluate every dev split → results.json.

Methods (paper, Table 2):

* ``standard``: "STD", standard RoBERTa fine-tuning with the published fairseq recipe of the reference's GLUE
  table (Adam β=(0.9, 0.98), ε=1e-6, polynomial decay, 6% warmup, dropout 0.1, weight decay 0.01, no gradient
  clipping, the task's learning rate, batch size and ``max_updates``).
* ``std++``: "standard fine-tuning plus the best practices of Zhang et al. 2020 (longer fine-tuning and Adam
  bias correction)". Here: the ``standard`` recipe trained ``longer_training_factor`` (default 2) times as many
  updates (warmup stays 6% of the longer horizon). Adam bias correction is not a difference in this code base:
  ``torch.optim.AdamW`` (the Trainer's optimizer) always corrects the bias, as fairseq's Adam does; the BERTAdam
  Zhang et al. criticise is not used by either method.
* ``r3f``: ``standard`` + the R3F objective (:class:`r3f_utils.R3FTrainer`; for the STS-B regression head the
  official code adds no KL term, and neither does the trainer).
* ``r4f``: ``r3f`` + spectral norm on the classification head's ``out_proj`` (:func:`r3f_utils.apply_r4f`).
* ``smart``: ``standard`` + the SMART objective (:class:`r3f_utils.SMARTTrainer`); parameter ``smart_<field>`` is
  the :class:`r3f_utils.SMARTConfig` field ``<field>`` (:func:`method_config`).
* ``freelb``: ``standard`` trained with FreeLB (:class:`r3f_utils.FreeLBTrainer`); parameter ``freelb_<field>`` is
  the :class:`r3f_utils.FreeLBConfig` field ``<field>``. The published FreeLB recipe also changes the optimiser
  settings (Adam β₂ 0.999, weight decay 0.1, per-task learning rate and batch): the registry rows set those through
  the ordinary parameters.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import datasets
from pydantic import Field
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers import set_seed as hf_set_seed

from r3f_utils.data.glue import GlueData, get_glue_task, load_glue
from r3f_utils.experiments import checkpoints
from r3f_utils.methods.freelb import FreeLBConfig
from r3f_utils.methods.smart import SMARTConfig
from r3f_utils.methods.weight_decay import apply_weight_decay_scope
from r3f_utils.metrics import build_compute_metrics
from r3f_utils.models import configure_threads, load_model_and_tokenizer
from r3f_utils.package_data import fixtures_dir
from r3f_utils.params import GLUE_METHODS, GlueParams, GlueTraining, resolve
from r3f_utils.params import check_parameter as _check
from r3f_utils.recipes import PAPER_GLUE_HPARAMS  # the reference GLUE table, torch-free for the launchers

__all__ = [
    "FIXTURES",
    "GLUE_METHODS",
    "METHOD_CONFIGS",
    "PAPER_GLUE_HPARAMS",
    "RunConfig",
    "build_glue_model",
    "build_trainer",
    "evaluate_glue",
    "load_glue_data",
    "method_config",
    "method_parameters",
    "remove_checkpoints",
    "resolve_glue_config",
    "run_extra",
    "tokenize_glue",
    "train_with_resume",
]

# method -> its config class: parameter ``<method>_<field>`` is the class's field ``<field>`` (method_config)
METHOD_CONFIGS: dict[str, type] = {"smart": SMARTConfig, "freelb": FreeLBConfig}
# data_dir value that means "the smoke fixtures of this repository" (tests/fixtures/<family>)
FIXTURES = "fixtures"

PAPER_GLUE_SHARED: dict[str, float] = {"adam_beta1": 0.9, "adam_beta2": 0.98, "adam_epsilon": 1e-6,
                                       "warmup_ratio": 0.06, "dropout": 0.1, "weight_decay": 0.01}


class RunConfig(GlueTraining):
    """Every setting of one fine-tuning run (GLUE task or XNLI); field names = notebook parameter names.

    The fields, types, defaults and allowed ranges are :class:`r3f_utils.params.GlueTraining`'s (the GLUE
    notebook's parameters); a run adds its ``task`` (``"xnli"`` for XNLI) and, for XNLI, its ``languages``.
    """

    task: str = "rte"
    languages: list[str] = Field(default_factory=list)  # XNLI only

    @property
    def total_updates(self) -> int:
        """Optimizer updates actually run: ``max_updates``, times ``longer_training_factor`` for std++."""
        factor = self.longer_training_factor if self.method == "std++" else 1.0
        return max(1, round(self.max_updates * factor))

    @property
    def checkpoint_dir(self) -> Path:
        """Where the Trainer keeps checkpoints (for resume and best-checkpoint selection)."""
        return Path(self.output_dir) / "checkpoints"

    def r3f_config(self) -> Any:
        """:class:`r3f_utils.R3FConfig` for r3f/r4f, None for standard and std++."""
        if self.method not in ("r3f", "r4f"):
            return None
        from r3f_utils import R3FConfig

        return R3FConfig(eps=self.eps, r3f_lambda=self.r3f_lambda, noise_type=self.noise_type)

    def smart_config(self) -> Any:
        """:class:`r3f_utils.SMARTConfig` for smart, None otherwise."""
        return method_config(self, "smart") if self.method == "smart" else None

    def freelb_config(self) -> Any:
        """:class:`r3f_utils.FreeLBConfig` for freelb, None otherwise."""
        return method_config(self, "freelb") if self.method == "freelb" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters for results.json, including the effective number of updates."""
        return {**self.model_dump(), "total_updates": self.total_updates}


def method_parameters(method: str) -> dict[str, str]:
    """``{parameter: field}`` of a method's config class: each field ``<field>`` with a parameter
    ``<method>_<field>`` in :class:`r3f_utils.params.GlueTraining` (the fields without one keep their defaults)."""
    return {f"{method}_{f.name}": f.name for f in dataclasses.fields(METHOD_CONFIGS[method])
            if f"{method}_{f.name}" in GlueTraining.model_fields}


def method_config(cfg: GlueTraining, method: str) -> Any:
    """The :class:`r3f_utils.SMARTConfig` / :class:`r3f_utils.FreeLBConfig` of ``cfg``'s ``<method>_*``
    parameters (their prefix stripped)."""
    return METHOD_CONFIGS[method](**{field: getattr(cfg, name) for name, field in method_parameters(method).items()})


def _fixtures(family: str) -> str:
    path = fixtures_dir(family)
    if not path.is_dir():
        raise FileNotFoundError(f"data_dir={FIXTURES!r} means the smoke fixtures in {path}, which do not exist (an "
                                "install without package data): pass data_dir=<folder with your files> "
                                "or None for the Hub")
    return str(path)


def validate_config(cfg: RunConfig, *, methods: Sequence[str], family: str) -> RunConfig:
    """Check what the parameter class cannot (the family's methods, fields that exclude each other, the profile's
    needs, SMART/FreeLB's own validation); raise ValueError naming the parameter, the value and what is allowed."""
    _check(cfg.method in methods, "method", cfg.method, f"choose one of {list(methods)}")
    _check(not (cfg.fp16 and cfg.bf16), "fp16", cfg.fp16, "fp16 and bf16 exclude each other")
    if cfg.method in METHOD_CONFIGS:
        try:
            method_config(cfg, cfg.method)
        except ValueError as err:  # "<Config>.<field> must be ...": name the notebook parameter <method>_<field>
            param = f"{cfg.method}_{str(err).split('.', 1)[1].split(' ', 1)[0]}"
            raise ValueError(f"parameter {param}={getattr(cfg, param, None)!r} is invalid: {err}") from None
    if cfg.profile == "paper":
        _check(not cfg.model_name.startswith("tiny-"), "model_name", cfg.model_name,
               "the paper profile needs a pretrained model (the registry row's model_name), not a tiny smoke model")
        _check(cfg.data_dir != FIXTURES, "data_dir", cfg.data_dir,
               "the paper profile needs the real data: None (the Hub) or a folder with the full files")
    if cfg.profile == "cpu":
        _check(not cfg.model_name.startswith("tiny-"), "model_name", cfg.model_name,
               "the cpu profile runs real pretrained weights on a CPU (model_name='minilm'), not a tiny smoke model")
    if cfg.data_dir == FIXTURES:
        cfg.data_dir = _fixtures(family)
    return cfg


def resolve_glue_config(**params: Any) -> RunConfig:
    """Build and validate the :class:`RunConfig` of a GLUE run from the notebook's parameters
    (:class:`r3f_utils.params.GlueParams`; missing ones take its defaults).

    Unknown parameter names raise TypeError naming them (papermill itself only warns).
    """
    checked = resolve(GlueParams, params).to_params()
    if checked["output_dir"] is None:  # a fresh folder for interactive runs (results.json is written once)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        checked["output_dir"] = f"runs/notebook/{checked['task']}-{checked['method']}-{stamp}"
    cfg = RunConfig.model_construct(**checked)
    cfg.task = get_glue_task(cfg.task).name
    return validate_config(cfg, methods=GLUE_METHODS, family="glue")


def run(params: dict[str, Any]) -> tuple[RunConfig, dict[str, float], dict[str, Any]]:
    """The notebook's steps in one call (``python -m r3f_utils train glue``): ``(cfg, metrics, extra)``."""
    cfg = resolve_glue_config(**params)
    data = load_glue_data(cfg)
    model, tokenizer = build_glue_model(cfg, data.task.num_labels, data.texts())
    tokenized = tokenize_glue(data, tokenizer, cfg)
    trainer = build_glue_trainer(cfg, model, tokenizer, data, tokenized)
    train_summary = train_with_resume(trainer, cfg)
    metrics = evaluate_glue(trainer, data, tokenized)
    return cfg, metrics, run_extra(cfg, model, train_summary)


def load_glue_data(cfg: RunConfig) -> GlueData:
    """The task's train and dev splits, from ``cfg.data_dir`` or the Hub."""
    return load_glue(cfg.task, data_dir=cfg.data_dir, max_train_samples=cfg.max_train_samples,
                     max_eval_samples=cfg.max_eval_samples)


def build_glue_model(
    cfg: RunConfig, num_labels: int, texts: Sequence[str] = ()
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Seed everything, load the model with a fresh head (``num_labels=1``: regression) and, for r4f, apply R4F.

    ``texts`` train the tokenizer of a tiny smoke model; pretrained models ignore them.
    """
    configure_threads(cfg.model_name)  # tiny smoke models: one thread, machine-independent values
    hf_set_seed(cfg.seed)
    model, tokenizer = load_model_and_tokenizer(cfg.model_name, head="classification", num_labels=num_labels,
                                                texts=texts, seed=cfg.seed, dropout=cfg.dropout,
                                                head_dropout=cfg.head_dropout)
    if cfg.method == "r4f":
        from r3f_utils import apply_r4f

        apply_r4f(model, scope=cfg.r4f_scope, spectral_norm=cfg.r4f_spectral_norm)
    return model, tokenizer


def tokenize_pairs(
    ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, text_keys: Sequence[str], max_length: int
) -> datasets.Dataset:
    """Tokenize one or two text fields (truncated to ``max_length``); keep only the model inputs and ``label``."""
    drop = [c for c in ds.column_names if c != "label"]
    return ds.map(lambda batch: tokenizer(*[batch[k] for k in text_keys], truncation=True, max_length=max_length),
                  batched=True, remove_columns=drop, keep_in_memory=True)


def tokenize_glue(data: GlueData, tokenizer: PreTrainedTokenizerBase, cfg: RunConfig) -> dict[str, Any]:
    """``{"train": Dataset, "dev": {suffix: Dataset}}`` ready for the Trainer."""
    keys = data.task.text_keys
    return {"train": tokenize_pairs(data.train, tokenizer, keys, cfg.max_length),
            "dev": {s: tokenize_pairs(d, tokenizer, keys, cfg.max_length) for s, d in data.dev.items()}}


def build_training_arguments(cfg: RunConfig, *, best_metric: str, num_train_examples: int) -> TrainingArguments:
    """The reference recipe as ``TrainingArguments``: polynomial decay to 0 after 6% warmup, Adam (0.9, 0.98),
    ε 1e-6, no clipping (fairseq ``--clip-norm 0``); evaluate and save every ``eval_steps`` (default: once an
    epoch, as fairseq's ``--best-checkpoint-metric`` does) and reload the best checkpoint at the end."""
    steps_per_epoch = math.ceil(num_train_examples / cfg.batch_size)
    eval_steps = min(cfg.eval_steps or steps_per_epoch, cfg.total_updates)
    return TrainingArguments(
        **checkpoints.checkpointed_run_arguments(cfg.checkpoint_dir, eval_steps=eval_steps, seed=cfg.seed,
                                                 fp16=cfg.fp16, bf16=cfg.bf16, profile=cfg.profile,
                                                 report_to=cfg.report_to),
        max_steps=cfg.total_updates,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 32),
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of max_steps in transformers 5
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        adam_epsilon=cfg.adam_epsilon,
        max_grad_norm=0.0,
        metric_for_best_model=best_metric,
        greater_is_better=True,
    )


def build_trainer(
    cfg: RunConfig,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    *,
    metrics: Sequence[str],
    best_metric: str,
    regression: bool = False,
) -> Trainer:
    """The method's trainer, selecting by ``best_metric``: :class:`r3f_utils.R3FTrainer` (``r3f=None`` for
    standard/std++), :class:`r3f_utils.SMARTTrainer` or :class:`r3f_utils.FreeLBTrainer`."""
    args = build_training_arguments(cfg, best_metric=best_metric, num_train_examples=len(train_dataset))
    kwargs: dict[str, Any] = {
        "model": model, "args": args, "train_dataset": train_dataset, "eval_dataset": eval_dataset,
        "processing_class": tokenizer, "data_collator": DataCollatorWithPadding(tokenizer),
        "compute_metrics": build_compute_metrics(metrics, regression=regression),
    }
    if cfg.method == "smart":
        from r3f_utils.methods.smart import SMARTTrainer

        return apply_weight_decay_scope(SMARTTrainer(smart=cfg.smart_config(), **kwargs), cfg.weight_decay_scope)
    if cfg.method == "freelb":
        from r3f_utils.methods.freelb import FreeLBTrainer

        return apply_weight_decay_scope(FreeLBTrainer(freelb=cfg.freelb_config(), **kwargs), cfg.weight_decay_scope)
    from r3f_utils.methods.trainers import R3FTrainer

    return apply_weight_decay_scope(R3FTrainer(r3f=cfg.r3f_config(), **kwargs), cfg.weight_decay_scope)


def build_glue_trainer(cfg: RunConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       data: GlueData, tokenized: Mapping[str, Any]) -> Trainer:
    """:func:`build_trainer` for a GLUE task: evaluates the selection split (MNLI: matched) during training."""
    task = data.task
    selection = tokenized["dev"][task.dev_splits[0][0]]
    return build_trainer(cfg, model, tokenizer, tokenized["train"], selection, metrics=task.metrics,
                         best_metric=task.best_metric, regression=task.is_regression)


def train_with_resume(trainer: Trainer, cfg: RunConfig) -> dict[str, Any]:
    """Train, resuming from the last checkpoint in ``cfg.checkpoint_dir``; the best checkpoint (by the task's
    dev metric) is loaded back at the end (:func:`r3f_utils.experiments.checkpoints.train_with_resume`)."""
    return checkpoints.train_with_resume(trainer, cfg.checkpoint_dir)


def evaluate_splits(
    trainer: Trainer, splits: Mapping[str, datasets.Dataset], metrics: Sequence[str]
) -> dict[str, float]:
    """Evaluate the (best) model on each split; keys ``<metric>`` or ``<metric>_<suffix>``, as the paper prints
    them (percent). The Trainer's ``eval_`` prefix is stripped here, the one place numbers leave the Trainer."""
    out: dict[str, float] = {}
    for suffix, ds in splits.items():
        result = trainer.evaluate(eval_dataset=ds, metric_key_prefix="eval")
        for name in metrics:
            out[f"{name}_{suffix}" if suffix else name] = result[f"eval_{name}"]
    return out


def evaluate_glue(trainer: Trainer, data: GlueData, tokenized: Mapping[str, Any]) -> dict[str, float]:
    """Every dev split of the task (MNLI: ``accuracy_matched`` and ``accuracy_mismatched``)."""
    return evaluate_splits(trainer, tokenized["dev"], data.task.metrics)


def run_extra(cfg: RunConfig, model: PreTrainedModel, train_summary: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    """What results.json keeps besides the metrics: timing, best checkpoint, and the head's spectral norms
    (so a test can check that R4F's head really is normalised in the finished run)."""
    from r3f_utils.methods.r4f import head_spectral_norms, r4f_scope

    adversarial = cfg.smart_config() or cfg.freelb_config()
    return {
        "method": cfg.method,
        "total_updates": cfg.total_updates,
        **({"method_config": asdict(adversarial)} if adversarial is not None else {}),
        "train": dict(train_summary),
        "head": {"r4f_scope": r4f_scope(model), "parametrized": _parametrized(model),
                 "spectral_norms": head_spectral_norms(model)},
        **more,
    }


def _parametrized(model: PreTrainedModel) -> list[str]:
    """The spectrally normalised modules (either R4F implementation)."""
    from r3f_utils.methods.r4f import spectral_normed_modules

    return spectral_normed_modules(model)


def remove_checkpoints(cfg: RunConfig) -> None:
    """Delete ``cfg.checkpoint_dir`` once the results are written, unless ``keep_checkpoints``."""
    checkpoints.remove_checkpoints(cfg.checkpoint_dir, keep=cfg.keep_checkpoints)
