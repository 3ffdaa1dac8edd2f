"""The notebooks' parameters as typed, validated models (pydantic v2), one class per experiment family.

Each class's fields are its notebook's ``parameters`` cell: name, type, default (the smoke profile's, the value a
notebook runs with when nothing is injected), allowed range and help text. The cell itself is stamped from the
class (``python -m r3f_utils.colab``, :func:`parameters_source`) and ``tests/unit/test_families.py`` fails when
a cell and its class drift, so each default lives here once; the cpu and paper profiles' values are each
family's (``Family.profiles`` in :mod:`r3f_utils.families`) and the registry rows' own.

:func:`resolve` validates a mapping of parameters with the errors the notebooks always gave: an unknown name is a
``TypeError`` with "did you mean", a bad value a ``ValueError`` ``parameter <name>=<value> is invalid: <what is
allowed>``. Numbers are strict: a string such as ``'1e-5'`` is refused, not guessed at (the registry's and
train's YAML reader reads ``1e-5`` as a number, :mod:`r3f_utils.yaml_io`). :func:`validation_problems` words every
error of any model in the same terms, with the field's path; the registry's rows and claims use it.

Torch-free: the registry, the runner and :mod:`r3f_utils.families` import it.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from .constants import NOISE_TYPES, PROFILES

__all__ = [
    "GLUE_METHODS",
    "GLUE_NOISE_TYPES",
    "GLUE_TASK_NAMES",
    "NOISE_TYPES",
    "PAPER_CHAIN",
    "PAPER_PROBE_TASKS",
    "PROBE_MAX_CYCLES",
    "PROBING_STUDIES",
    "PROFILES",
    "RENAMED",
    "XNLI_LANGUAGES",
    "ComputeCostParams",
    "GlueParams",
    "GlueTraining",
    "Identity",
    "Params",
    "ProbingParams",
    "Problems",
    "SftParams",
    "SummarizationParams",
    "Trained",
    "Training",
    "WallTimeParams",
    "XnliParams",
    "field_allowed",
    "location",
    "parameters_source",
    "renamed",
    "resolve",
    "spelling_problems",
    "suggest",
    "validation_problems",
]

Profile = Literal[PROFILES]  # smoke | cpu | paper (r3f_utils.constants)
GLUE_TASK_NAMES = ("mnli", "qqp", "rte", "qnli", "mrpc", "cola", "sst2", "stsb")
XNLI_LANGUAGES = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur")
GLUE_METHODS = ("standard", "std++", "r3f", "r4f", "smart", "freelb")
PAPER_PROBE_TASKS = ("mnli", "qqp", "rte", "qnli", "mrpc", "cola")  # Figure 3: "six other GLUE tasks" (by elimination)
PAPER_CHAIN = ("sst2", "qnli", "qqp", "rte")  # Figures 4 and 5
PROBE_MAX_CYCLES = 5  # Figure 5's cyclic chain: metric names exist for cycles 1..5
# the noise types a family allows, derived from the one list (r3f_utils.constants.NOISE_TYPES): neftune is the sft
# family's (its methods); none, the released RoBERTa path, only the GLUE recipe's
GLUE_NOISE_TYPES = tuple(t for t in NOISE_TYPES if t != "neftune")
SAMPLED_NOISE_TYPES = tuple(t for t in GLUE_NOISE_TYPES if t != "none")  # summarization, Table 1
PROBING_STUDIES = ("generalization", "degradation", "retention")  # Figures 3, 4, 5
FIXTURES = "fixtures"  # data_dir value meaning the smoke fixtures of this repository (tests/fixtures/<family>)
EXPERIMENT_HELP = "the registry experiment this run feeds (its key, or the id of one of its rows)"

# Registry schema 3 gave each concept one spelling (YAML key = notebook parameter = config field = results.json
# key). Each old spelling -> its new one; refused, with this pointer, wherever a parameter can be written: registry
# rows, `reproduce --set`, `train --set`/`--params`, papermill -p, the parameter classes (:func:`resolve`).
REGISTRY_SCHEMA = 3
MIGRATION_NOTE = "docs/registry.md#migration-from-schema-2"
RENAMED = {
    "smart_lambda": "smart_adv_lambda",  # <method>_<field of SMARTConfig / FreeLBConfig>
    "smart_steps": "smart_ascent_steps",
    "freelb_steps": "freelb_ascent_steps",
    "freelb_lr": "freelb_adv_lr",
    "row": "experiment",  # the registry experiment a run feeds
}
# a name whose meaning moved: the probing family's `experiment` was its study (now `study`; `experiment` is the
# registry experiment, as in every family)
RENAMED_IN_FAMILY = {("probing", "experiment"): "study"}

# the cell's sections, in the order they are printed; a class may retitle one (``TITLES``)
SECTIONS = {
    "identity": "identity (the runner injects these four)",
    "what": "what runs",
    "optimisation": "optimisation",
    "lora": "LoRA (finetuning=\"lora\")",
    "r3f": "R3F / R4F",
    "smart": "SMART (method=\"smart\"; defaults: official mt-dnn code, paper eta and epsilon; see docs/baselines.md)",
    "freelb": "FreeLB (method=\"freelb\"; defaults: the published SST-2 launch script, zhuchen03/FreeLB)",
    "decoding": "decoding (None = the dataset's recipe, r3f_utils.experiments.summarization.DECODING)",
    "probe": "probe (the paper's probe hyper-parameters are NOT FOUND; docs/probing.md)",
    "heldout": "held-out data and generation",
    "data": "data and run",
}

POSITIVE = "a positive number"
POSITIVE_INT = "a positive integer"
OPTIONAL_POSITIVE_INT = "None or a positive integer"
FRACTION = "a fraction in [0, 1)"


def P(default: Any, help: str, *, section: str, allowed: str | None = None, **constraints: Any) -> Any:
    """A parameter: its default, one line of help (the cell's comment), its section of the cell and, for the
    error message, what is allowed (derived from a ``Literal`` type when not given)."""
    extra = {"section": section, **({"allowed": allowed} if allowed else {})}
    return Field(default, description=help, json_schema_extra=extra, **constraints)


class Params(BaseModel):
    """Base of the parameter classes: unknown names are refused, numbers are strict, assignment is free."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)
    FAMILY: ClassVar[str] = ""
    TITLES: ClassVar[dict[str, str]] = {}

    def to_params(self) -> dict[str, Any]:
        """The parameters as a plain mapping (lists stay lists)."""
        return self.model_dump()


class Identity(Params):
    """The four parameters the runner injects into every notebook."""

    experiment: str = P("", EXPERIMENT_HELP, section="identity")
    profile: Profile = P("smoke", "smoke (tiny model, fixture files, CPU, seconds) | cpu (real pretrained weights, "
                         "e.g. minilm, CPU) | paper (registry parameters, GPU)", section="identity")
    seed: int = P(1, "random seed (model head, data order, dropout, noise)", section="identity", ge=0,
                  allowed="an integer >= 0")
    output_dir: str | None = P(None, "run folder for results.json and checkpoints; None: a new folder under "
                               "runs/notebook/", section="identity")


class Trained(Identity):
    """The run controls of every family that trains with a Trainer: checkpoints kept, reporting integrations."""

    keep_checkpoints: bool = P(False, "keep the best/last checkpoints after results.json is written", section="data")
    report_to: str = P("none", "the Trainer's integrations: none | tensorboard | wandb | all | a comma-separated "
                       "list", section="data")


def _positive(default: float, help: str, section: str = "optimisation") -> Any:
    return P(default, help, section=section, gt=0, allowed=POSITIVE)


def _positive_int(default: int, help: str, section: str = "optimisation") -> Any:
    return P(default, help, section=section, gt=0, allowed=POSITIVE_INT)


def _optional_positive_int(default: int | None, help: str, section: str = "data") -> Any:
    return P(default, help, section=section, gt=0, allowed=OPTIONAL_POSITIVE_INT)


class Training(Trained):
    """What every encoder fine-tuning family (GLUE, XNLI, probing stages) shares: the reference GLUE recipe."""

    method: str = P("r3f", "standard | r3f | r4f (r3f + spectral-norm head)", section="what")
    model_name: str = P("tiny-roberta", "paper: FacebookAI/roberta-large; CPU on real weights: minilm",
                        section="what")
    learning_rate: float = _positive(1.0e-3, "paper: 1e-5 (RTE, MRPC, CoLA) or 5e-6 (MNLI, QNLI, QQP, SST-2)")
    max_updates: int = _positive_int(120, "paper: the task's Max Updates (RTE 3120, MRPC 2296, CoLA 5336, ...)")
    batch_size: int = _positive_int(8, "paper: the task's Max Sentences (8, 16 or 32)")
    warmup_ratio: float = P(0.06, "linear warmup over 6% of the updates, then polynomial (linear) decay to 0",
                            section="optimisation", ge=0, lt=1, allowed=FRACTION)
    weight_decay: float = P(0.01, "Table 12 (fairseq's RTE example: 0.1)", section="optimisation")
    adam_beta1: float = P(0.9, "Adam betas (0.9, 0.98)", section="optimisation")
    adam_beta2: float = P(0.98, "", section="optimisation")
    adam_epsilon: float = _positive(1.0e-6, "Adam eps")
    dropout: float | None = P(0.1, "hidden and attention dropout; None: the pretrained config's",
                              section="optimisation", ge=0, lt=1, allowed="None or a fraction in [0, 1)")
    head_dropout: float | None = P(None, "classification-head dropout (None: as dropout, the HF default); paper: 0.0 "
                                   "(fairseq pooler_dropout)", section="optimisation", ge=0, lt=1,
                                   allowed="None (the model's) or a fraction in [0, 1) (fairseq pooler_dropout: 0.0)")
    weight_decay_scope: Literal["no_bias_norm", "all"] = P(
        "no_bias_norm", "no_bias_norm (HF Trainer groups) | all (fairseq Adam: every parameter; paper)",
        section="optimisation")
    eps: float = _positive(1.0e-5, "noise scale sigma (fairseq --eps)", section="r3f")
    r3f_lambda: float = P(1.0, "weight of the symmetric KL (fairseq's RTE example: 0.7)", section="r3f", ge=0,
                          allowed="a non-negative number")
    noise_type: Literal[GLUE_NOISE_TYPES] = P(
        "uniform", "uniform U(-eps, eps) | normal N(0, eps) | none (the released RoBERTa code path)", section="r3f")
    r4f_scope: Literal["out_proj", "all"] = P(
        "out_proj", "out_proj (official: the head's last Linear) | all (every Linear of the head)", section="r3f")
    r4f_spectral_norm: Literal["hook", "parametrization"] = P(
        "hook", "hook (official: torch.nn.utils.spectral_norm, no warm-up) | parametrization", section="r3f")
    data_dir: str | None = P(FIXTURES, "\"fixtures\": tests/fixtures/<family> (smoke); None: the Hub; or a folder "
                             "<name>/<split>.jsonl", section="data")
    max_train_samples: int | None = _optional_positive_int(None, "keep the first N training examples (None: all)")
    max_eval_samples: int | None = _optional_positive_int(None, "keep the first N examples of each dev/test split "
                                                          "(None: all)")
    max_length: int = _positive_int(128, "tokens per example (paper: 512, fairseq --max-positions)", "data")
    eval_steps: int | None = _optional_positive_int(None, "evaluate + checkpoint every N updates (None: once per "
                                                    "epoch)")
    fp16: bool = P(False, "mixed precision on a GPU (paper profile: bf16: True)", section="data")
    bf16: bool = P(False, "", section="data")


class GlueTraining(Training):
    """:class:`Training` plus std++ and the SMART / FreeLB baselines (the GLUE recipe of every GLUE-like family).

    The SMART and FreeLB defaults are :class:`r3f_utils.SMARTConfig`'s and :class:`r3f_utils.FreeLBConfig`'s
    (a test pins them equal; the method classes import torch, this module must not).
    """

    method: Literal["standard", "std++", "r3f", "r4f", "smart", "freelb"] = P(
        "r3f", "standard | std++ (standard, trained longer_training_factor x longer) | r3f | r4f (r3f + "
        "spectral-norm head) | smart | freelb", section="what")
    longer_training_factor: float = P(2.0, "std++ only: updates: max_updates x this", section="optimisation", ge=1,
                                      allowed="a number >= 1")
    smart_adv_lambda: float = P(1.0, "lambda_s, weight of the smoothness regulariser (mt-dnn adv_alpha 1; "
                                "paper {1, 3, 5})", section="smart")
    smart_ascent_steps: int = P(1, "K ascent steps on the noise (mt-dnn adv_k)", section="smart")
    smart_step_size: float = P(1.0e-3, "eta (paper; mt-dnn CLI 1e-5)", section="smart")
    smart_noise_std: float = P(1.0e-5, "sigma of the Gaussian noise init (mt-dnn adv_noise_var)", section="smart")
    smart_epsilon: float | None = P(1.0e-5, "projection radius of the \"paper\" rule; None: no projection",
                                    section="smart")
    smart_norm: str = P("inf", "inf | l2, per token", section="smart")
    smart_ascent_rule: str = P("paper", "paper | mtdnn (normalise noise + eta g: norm ~1 per token)",
                               section="smart")
    smart_site: str = P("word_embeddings", "word_embeddings | embeddings_output (mt-dnn before 2021)",
                        section="smart")
    smart_reg_detach: str = P("targets", "targets (mt-dnn SymKlCriterion) | none (R3F-style)", section="smart")
    smart_bregman_mu: float = P(0.0, "mu of the Bregman proximal point term (paper 1; official code: none)",
                                section="smart")
    freelb_ascent_steps: int = P(2, "K ascent steps (--adv-steps): 1 + K forward/backward passes per update",
                                 section="freelb")
    freelb_adv_lr: float = P(0.1, "ascent step alpha (--adv-lr)", section="freelb")
    freelb_init_mag: float = P(1.0, "random init magnitude (--rand-init-mag)", section="freelb")
    freelb_max_norm: float | None = P(0.6, "bound on the perturbation (--max-norm); None: no bound",
                                      section="freelb")
    freelb_norm: str = P("l2", "l2 | linf", section="freelb")
    freelb_shared_dropout: bool = P(True, "one set of dropout masks for all passes (official \"syncdp\")",
                                    section="freelb")


class GlueParams(GlueTraining):
    """``notebooks/glue.ipynb`` (Table 2): one GLUE task, one method, one seed."""

    FAMILY: ClassVar[str] = "glue"
    TITLES: ClassVar[dict[str, str]] = {"what": "task, method, model",
                                        "optimisation": "optimisation (paper: reference GLUE table, Tables 11 and "
                                                        "12 of paper_tables.md §6b)"}
    experiment: str = P("glue-notebook", EXPERIMENT_HELP, section="identity")
    task: str = P("rte", "mnli qqp rte qnli mrpc cola sst2 stsb", section="what")


class XnliParams(Training):
    """``notebooks/xnli.ipynb`` (Table 3): zero-shot cross-lingual transfer from English."""

    FAMILY: ClassVar[str] = "xnli"
    TITLES: ClassVar[dict[str, str]] = {"what": "method, model, languages",
                                        "optimisation": "optimisation (XNLI hyper-parameters are not in the "
                                                        "paper's text: see docs/glue_xnli.md)"}
    experiment: str = P("xnli-notebook", EXPERIMENT_HELP, section="identity")
    method: Literal["standard", "r3f", "r4f"] = P("r3f", "standard | r3f | r4f (r3f + spectral-norm head)",
                                                  section="what")
    model_name: str = P("tiny-xlmr", "paper: FacebookAI/xlm-roberta-large", section="what")
    languages: list[str] = P(list(XNLI_LANGUAGES), "test languages (Table 3: all 15)", section="what")
    learning_rate: float = _positive(1.0e-3, "paper profile: 7.5e-6")
    max_updates: int = _positive_int(120, "paper profile: 24544 (2 epochs of the English training data at "
                                     "batch 32)")
    batch_size: int = _positive_int(8, "paper profile: 32")


class WallTimeParams(GlueParams):
    """``notebooks/wall_time.ipynb`` (Figure 1): training seconds to the best checkpoint, SST-2."""

    FAMILY: ClassVar[str] = "wall_time"
    TITLES: ClassVar[dict[str, str]] = {"what": "method, model, task",
                                        "optimisation": "optimisation (paper: the SST-2 GLUE recipe, Table 12)"}
    experiment: str = P("fig1.sst2.r3f", EXPERIMENT_HELP, section="identity")
    method: Literal["standard", "r3f", "r4f", "smart", "freelb"] = P(
        "r3f", "standard | r3f | r4f | smart | freelb", section="what")
    task: str = P("sst2", "Figure 1 is SST-2 (\"consistent across all other GLUE tasks\")", section="what")
    learning_rate: float = _positive(1.0e-3, "paper: 5e-6")
    max_updates: int = _positive_int(60, "paper: 20935")
    batch_size: int = _positive_int(8, "paper: 32")
    eval_steps: int | None = _optional_positive_int(10, "evaluate + checkpoint every N updates (None: once per "
                                                    "epoch); the best one is timed")


class ProbingParams(GlueTraining):
    """``notebooks/probing.ipynb`` (Figures 3-5): one probing study, one method, one seed.

    Every fine-tuning stage is a GLUE run with these parameters; ``learning_rate``, ``max_updates`` and
    ``batch_size`` None take the stage task's value in the reference GLUE table.
    """

    FAMILY: ClassVar[str] = "probing"
    TITLES: ClassVar[dict[str, str]] = {"what": "study and method",
                                        "optimisation": "fine-tuning of every stage: the GLUE recipe (None: the "
                                                        "task's value in the reference GLUE table)"}
    experiment: str = P("probing-notebook", EXPERIMENT_HELP, section="identity")
    study: Literal[PROBING_STUDIES] = P(
        "generalization", "generalization (Figure 3) | degradation (Figure 4) | retention (Figure 5)",
        section="what")
    method: Literal["standard", "std++", "r3f", "r4f", "smart", "freelb"] = P(
        "r4f", "a method of the GLUE recipe (standard, std++, r3f, r4f, smart, freelb)", section="what")
    source_task: str = P("sst2", "generalization: the task the encoder is fine-tuned on", section="what")
    probe_tasks: list[str] = P(list(PAPER_PROBE_TASKS),
                               "generalization: the six other GLUE tasks probed", section="what")
    chain: list[str] = P(list(PAPER_CHAIN), "degradation / retention: fine-tuning order (degradation "
                         "probes chain[0])", section="what")
    cycles: int = P(3, "retention: passes over the cyclic chain", section="what", ge=1, le=PROBE_MAX_CYCLES,
                    allowed=f"an integer in 1..{PROBE_MAX_CYCLES}")
    learning_rate: float | None = P(1.0e-3, "paper: None (1e-5 RTE/MRPC/CoLA, 5e-6 MNLI/QNLI/QQP/SST-2)",
                                    section="optimisation", gt=0, allowed="None or a positive number")
    max_updates: int | None = P(24, "paper: None (the task's Max Updates)", section="optimisation", gt=0,
                                allowed=OPTIONAL_POSITIVE_INT)
    batch_size: int | None = P(8, "paper: None (the task's Max Sentences)", section="optimisation", gt=0,
                               allowed=OPTIONAL_POSITIVE_INT)
    eval_steps: int | None = _optional_positive_int(24, "evaluate + checkpoint every N updates (None: once per "
                                                    "epoch, as the GLUE notebook)")
    probe_head: str = P("linear", "linear (the paper's \"a linear layer\") | full_head (fairseq's classification "
                        "head shape)", section="probe")
    probe_pooling: str = P("first", "first: the final <s>/[CLS] state (fairseq's head input) | mean: mean over "
                           "tokens", section="probe")
    probe_learning_rate: float = P(1.0e-3, "", section="probe")
    probe_standardize: bool = P(True, "z-score the features with the probe training split (scale cannot pass for "
                                "quality)", section="probe")
    probe_learning_rate_grid: list[float] = P([1.0e-4, 1.0e-3, 1.0e-2], "chosen on held-out training data; []: use "
                                              "probe_learning_rate", section="probe")
    probe_holdout_fraction: float = P(0.2, "share of the probe training split held out to choose the learning rate",
                                      section="probe")
    probe_epochs: int = P(10, "", section="probe")
    probe_batch_size: int = P(32, "", section="probe")
    probe_weight_decay: float = P(0.0, "", section="probe")
    probe_max_train_samples: int | None = P(None, "keep the first N training examples of each probed task",
                                            section="probe")

    @field_validator("experiment")
    @classmethod
    def _not_a_study(cls, value: str) -> str:
        """Registry schema 2 and before called the probing study ``experiment``: refuse a study name there."""
        if value in PROBING_STUDIES:
            raise ValueError(f"{value!r} is a probing study, not a registry experiment: write study={value!r} "
                             f"(registry schema {REGISTRY_SCHEMA} renamed the probing study experiment -> study, "
                             f"{MIGRATION_NOTE})")
        return value


class SummarizationParams(Trained):
    """``notebooks/summarization.ipynb`` (Table 4): BART (+R3F) on one summarization dataset."""

    FAMILY: ClassVar[str] = "summarization"
    TITLES: ClassVar[dict[str, str]] = {"what": "dataset, method, model",
                                        "optimisation": "training (paper: fairseq's BART summarization recipe)",
                                        "r3f": "R3F (method=\"r3f\")"}
    experiment: str = P("summarization-notebook", EXPERIMENT_HELP, section="identity")
    seed: int = P(1, "random seed (weights of a tiny model, data order, dropout, R3F noise)", section="identity",
                  ge=0, allowed="an integer >= 0")
    dataset: Literal["cnn_dailymail", "gigaword", "reddit_tifu"] = P(
        "cnn_dailymail", "cnn_dailymail (3.0.0) | gigaword | reddit_tifu (long, split 80/10/10 here)",
        section="what")
    method: Literal["standard", "r3f"] = P("r3f", "standard (the \"BART\" row: label-smoothed CE) | r3f (the "
                                           "\"BART+R3F\" row)", section="what")
    model_name: str = P("tiny-bart", "paper: facebook/bart-large", section="what")
    learning_rate: float = _positive(1.0e-3, "paper: 3e-5")
    max_updates: int = _positive_int(100, "paper: 20000 (CNN/DM, BART's script)")
    warmup_updates: int = P(6, "paper: 500; linear warmup, then polynomial (linear) decay to 0",
                            section="optimisation", ge=0, allowed="an integer in [0, max_updates]")
    label_smoothing: float = P(0.1, "paper: 0.1", section="optimisation", ge=0, lt=1, allowed=FRACTION)
    batch_size: int = _positive_int(4, "examples per device step")
    gradient_accumulation_steps: int = _positive_int(1, "paper: batch_size x this ~ 64 examples per update")
    eval_batch_size: int = _positive_int(32, "examples per evaluation / decoding step")
    weight_decay: float = P(0.01, "fairseq recipe", section="optimisation")
    adam_beta1: float = P(0.9, "Adam betas (0.9, 0.999)", section="optimisation")
    adam_beta2: float = P(0.999, "", section="optimisation")
    adam_epsilon: float = _positive(1.0e-8, "Adam eps")
    max_grad_norm: float = P(0.1, "fairseq --clip-norm 0.1", section="optimisation")
    max_source_length: int = _positive_int(128, "paper: 1024 (BART --truncate-source)")
    max_target_length: int = _positive_int(48, "paper: see the registry row")
    eval_steps: int | None = _optional_positive_int(None, "validation loss + checkpoint every N updates (None: "
                                                    "once per epoch); best is reloaded", "optimisation")
    eps: float = _positive(1.0e-5, "noise scale (normal: the standard deviation)", section="r3f")
    r3f_lambda: float = P(1.0, "weight of the symmetric KL term", section="r3f", ge=0,
                          allowed="a non-negative number")
    noise_type: Literal[SAMPLED_NOISE_TYPES] = P("normal", "normal N(0, eps) (fairseq's seq2seq default) | "
                                                 "uniform U(-eps, eps)", section="r3f")
    num_beams: int | None = _optional_positive_int(2, "paper CNN/DM: 4", "decoding")
    length_penalty: float | None = P(None, "paper CNN/DM: 2.0", section="decoding")
    min_length: int | None = P(5, "generated tokens before EOS may end (paper CNN/DM: 55)", section="decoding",
                               ge=0, allowed="None or an integer >= 0")
    max_length: int | None = _optional_positive_int(24, "generated tokens at most (paper CNN/DM: 140)", "decoding")
    no_repeat_ngram_size: int | None = P(None, "paper CNN/DM: 3", section="decoding", ge=0,
                                         allowed="None or an integer >= 0")
    data_dir: str | None = P(FIXTURES, "\"fixtures\": tests/fixtures/summarization (smoke); None: the Hub; or a "
                             "folder <dataset>/<split>.jsonl", section="data")
    eval_split: Literal["test", "validation"] = P("test", "the decoded and scored split (test | validation)",
                                                  section="data")
    max_train_samples: int | None = _optional_positive_int(None, "keep the first N training examples (None: all)")
    max_eval_samples: int | None = _optional_positive_int(None, "keep the first N validation and test examples "
                                                          "(None: all)")
    reddit_split_seed: int = P(0, "reddit_tifu: which 80/10/10 cut of the single Hub split", section="data")
    fp16: bool = P(False, "mixed precision on a GPU (paper profile: bf16: True)", section="data")
    bf16: bool = P(False, "", section="data")


class SftParams(Trained):
    """``notebooks/sft.ipynb`` (beyond the paper): supervised fine-tuning of a causal LM with R3F / NEFTune.

    ``method`` stays a string here: :func:`r3f_utils.experiments.sft.resolve_sft_config` refuses ``r4f`` with the
    method layer's own reason (no classification head) and checks the choices, ranges and combinations.
    """

    FAMILY: ClassVar[str] = "sft"
    TITLES: ClassVar[dict[str, str]] = {"what": "dataset, method, model", "optimisation": "training",
                                        "r3f": "noise and R3F", "data": "run"}
    experiment: str = P("sft-notebook", EXPERIMENT_HELP, section="identity")
    profile: Profile = P("smoke", "smoke (tiny Llama, fixture files, CPU, seconds) | paper (GPU: Qwen2.5-0.5B / "
                         "Llama-3.2-1B)", section="identity")
    seed: int = P(1, "random seed (weights of a tiny model, data order, dropout, noise)", section="identity", ge=0,
                  allowed="an integer >= 0")
    dataset: Literal["alpaca_cleaned", "dolly"] = P(
        "alpaca_cleaned", "alpaca_cleaned (yahma/alpaca-cleaned) | dolly (databricks/databricks-dolly-15k)",
        section="what")
    method: str = P("r3f_neftune", "standard | neftune (TRL's neftune_noise_alpha) | r3f (uniform noise) | "
                    "r3f_neftune (R3F KL + NEFTune noise)", section="what")
    finetuning: Literal["lora", "full"] = P("lora", "lora (PEFT LoRA adapters, base frozen) | full", section="what")
    model_name: str = P("tiny-llama", "GPU profile: Qwen/Qwen2.5-0.5B or meta-llama/Llama-3.2-1B (or a local "
                        "folder)", section="what")
    data_dir: str | None = P(FIXTURES, "None: the Hub; \"fixtures\": tests/fixtures/sft; else a folder holding "
                             "<dataset>/train.jsonl", section="what")
    learning_rate: float = _positive(1.0e-2, "GPU profile: 2e-4 (LoRA), 2e-5 (full)")
    max_updates: int = _positive_int(8, "")
    warmup_updates: int = P(0, "", section="optimisation", ge=0, allowed="an integer in [0, max_updates]")
    batch_size: int = _positive_int(8, "examples per device step")
    gradient_accumulation_steps: int = _positive_int(1, "")
    eval_batch_size: int = _positive_int(8, "")
    max_length: int = _positive_int(128, "tokens per example (prompt + completion); GPU profile: 512")
    weight_decay: float = P(0.0, "", section="optimisation")
    max_grad_norm: float = P(1.0, "", section="optimisation")
    eval_steps: int | None = _optional_positive_int(None, "validation loss + checkpoint every N updates (None: "
                                                    "once, at the end); best is reloaded", "optimisation")
    bf16: bool = P(False, "GPU profile: True (the KL is computed in float32 anyway)", section="optimisation")
    gradient_checkpointing: bool = P(False, "", section="optimisation")
    lora_r: int = _positive_int(8, "GPU profile: 16", "lora")
    lora_alpha: int = P(16, "GPU profile: 32", section="lora")
    lora_dropout: float = P(0.05, "", section="lora")
    lora_target_modules: str = P("all-linear", "", section="lora")
    neftune_alpha: float = _positive(5.0, "NEFTune's alpha (neftune, r3f_neftune)", section="r3f")
    neftune_length: str = P("padded", "r3f_neftune: padded (the neftune method's noise: TRL's hook) | real "
                            "(NEFTune's paper)", section="r3f")
    eps: float = _positive(1.0e-2, "r3f: U(-eps, eps); the paper: 1e-5", section="r3f")
    r3f_lambda: float = P(1.0, "", section="r3f", ge=0, allowed="a non-negative number")
    kl_reduction: str = P("per_sequence", "fairseq's seq2seq criterion | per_token", section="r3f")
    validation_size: int = _positive_int(8, "cut from the training split with split_seed (both datasets publish "
                                         "one split)", "heldout")
    test_size: int = _positive_int(8, "", "heldout")
    split_seed: int = P(0, "", section="heldout")
    max_train_samples: int | None = _optional_positive_int(None, "", "heldout")
    generation_samples: int = _positive_int(4, "test prompts answered greedily (token F1)", "heldout")
    max_new_tokens: int = _positive_int(16, "", "heldout")


class ComputeCostParams(Identity):
    """``notebooks/compute_cost.ipynb`` (Table 1): passes counted in one training step, and step times."""

    FAMILY: ClassVar[str] = "compute_cost"
    TITLES: ClassVar[dict[str, str]] = {"what": "what is measured",
                                        "r3f": "R3F",
                                        "smart": "SMART / FreeLB (every other hyper-parameter: the published "
                                                 "defaults of SMARTConfig / FreeLBConfig)"}
    experiment: str = P("table1.r3f_r4f", EXPERIMENT_HELP, section="identity")
    method: Literal["standard", "r3f", "r4f", "smart", "freelb"] = P(
        "r3f", "standard | r3f | r4f (r3f + spectral-norm head) | smart | freelb", section="what")
    model_name: str = P("tiny-roberta", "paper: FacebookAI/roberta-large (Figure 1: SST-2); CPU on real weights: "
                        "minilm", section="what")
    batch_size: int = _positive_int(16, "examples per step (paper SST-2: 32)", "what")
    max_length: int = _positive_int(64, "tokens per example", "what")
    timing_steps: int = _positive_int(5, "timed training steps per method (median), after one warm-up step", "what")
    eps: float = _positive(1.0e-5, "noise scale", section="r3f")
    r3f_lambda: float = P(1.0, "weight of the symmetric KL", section="r3f", ge=0, allowed="a non-negative number")
    noise_type: Literal[SAMPLED_NOISE_TYPES] = P("uniform", "uniform | normal", section="r3f")
    pass_mode: Literal["separate", "concat"] = P(
        "separate", "separate (two forward calls) | concat (one doubled batch): same objective", section="r3f")
    ascent_steps: int = _positive_int(1, "S: SMART ascent steps (mt-dnn adv_k) / FreeLB adv-steps", "smart")


# ---- validation ---------------------------------------------------------------------------------------------

M = TypeVar("M", bound=Params)


def check_parameter(cond: bool, name: str, value: Any, allowed: str) -> None:
    """``ValueError("parameter <name>=<value> is invalid: <allowed>")`` unless ``cond`` (the checks that span
    several fields, which the experiments make after :func:`resolve`)."""
    if not cond:
        raise ValueError(f"parameter {name}={value!r} is invalid: {allowed}")


def renamed(name: str, family: str | None = None) -> str:
    """The pointer for an old spelling: ``"smart_lambda was renamed smart_adv_lambda in registry schema 3 (docs/...)"``
    ("" when ``name`` is no old spelling; ``family``: the family-specific renames too)."""
    new = RENAMED_IN_FAMILY.get((family or "", name)) or RENAMED.get(name)
    return f"{name} was renamed {new} in registry schema {REGISTRY_SCHEMA} ({MIGRATION_NOTE})" if new else ""


def spelling_problems(names: Any) -> list[str]:
    """The pointer of each old spelling among ``names`` (see :data:`RENAMED`)."""
    return [renamed(name) for name in names if name in RENAMED]


def suggest(name: str, choices: Any) -> str:
    """``"; did you mean 'x'?"`` for the close matches of ``name`` among ``choices``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _choices(annotation: Any) -> list[Any] | None:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    for arg in get_args(annotation):  # Optional[Literal[...]]
        if get_origin(arg) is Literal:
            return list(get_args(arg))
    return None


def allowed(cls: type[Params], name: str) -> str:
    """What parameter ``name`` of ``cls`` accepts, in words."""
    return field_allowed(cls.model_fields[name])


def field_allowed(info: FieldInfo) -> str:
    """What a model's field accepts, in words: its ``allowed`` text, its ``Literal`` choices, or its type."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    choices = _choices(info.annotation)
    if choices is not None:
        return f"choose one of {choices}"
    kind = {int: "an integer", float: "a number", bool: "True or False", str: "a string"}
    args = get_args(info.annotation) if get_origin(info.annotation) is not dict else ()
    args = args or (info.annotation,)
    collections = {list: "a list", tuple: "a list", dict: "a mapping"}
    words = [kind.get(a, collections.get(get_origin(a), getattr(a, "__name__", str(a))))
             for a in map(_unwrap, args) if a is not type(None)]
    return ("None or " if type(None) in args else "") + " or ".join(words)


def resolve(cls: type[M], params: Mapping[str, Any], label: str | None = None) -> M:
    """Validate ``params`` (missing ones take the class's defaults) into a ``cls``.

    TypeError names unknown parameters (papermill only warns about them); ValueError names the first bad value,
    ``parameter <name>=<value> is invalid: <what is allowed>``.
    """
    label = label or cls.FAMILY or cls.__name__
    old = spelling_problems(params)
    if old:
        raise TypeError(f"old {label} parameter name(s): {'; '.join(old)}")
    unknown = sorted(set(params) - set(cls.model_fields))
    if unknown:
        hints = "".join(suggest(u, cls.model_fields) for u in unknown)
        raise TypeError(f"unknown {label} parameter(s) {unknown}{hints}; known: {sorted(cls.model_fields)}")
    try:
        return cls.model_validate(dict(params))
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0])
        value = params.get(name)
        why = str(first["ctx"]["error"]) if first["type"] == "value_error" else allowed(cls, name)
        if isinstance(value, str) and first["type"] in ("float_type", "int_type"):
            why += " (a string is not a number: write it without quotes)"
        raise ValueError(f"parameter {name}={value!r} is invalid: {why}") from None


class Problems(ValueError):
    """Raised by a validator that checks several fields together: each problem is ``(location, message)``, the
    location relative to the validated object; :func:`validation_problems` reports each at its own field."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``Optional[X]``."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if type(None) in get_args(annotation) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _walk(schema: Any, loc: tuple[Any, ...]) -> tuple[dict[str, FieldInfo], FieldInfo | None]:
    """Follow ``loc`` through ``schema`` (a model or pydantic dataclass and the types of its fields): the fields
    of the model holding the last field named on the way, and that field."""
    annotation, fields, info = schema, {}, None
    for part in loc:
        annotation = _unwrap(annotation)
        own = getattr(annotation, "__pydantic_fields__", None)
        if own is not None and part in own:
            fields, info, annotation = own, own[part], own[part].annotation
        elif get_origin(annotation) in (dict, Mapping):
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) in (list, tuple):
            annotation = get_args(annotation)[0]
    own = getattr(_unwrap(annotation), "__pydantic_fields__", None)
    return (own if own is not None else fields), info


def location(loc: tuple[Any, ...]) -> str:
    """``('smoke', 'tolerance', 'f1')`` as ``smoke.tolerance.f1``, ``('left', 0)`` as ``left[0]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def validation_problems(err: ValidationError, schema: Any) -> list[tuple[str, str]]:
    """Every error of ``err`` (a validation of ``schema``) as ``(field path, message)``, in the words of the
    parameter errors: an unknown key with "did you mean", a missing one, a validator's own message, else what
    the field accepts (its ``allowed`` text) and what it got."""
    out: dict[tuple[str, str], None] = {}
    errors = err.errors()
    deeper = {tuple(e["loc"])[:i] for e in errors for i in range(len(e["loc"]))}
    for e in errors:
        loc, kind = tuple(e["loc"]), e["type"]
        if kind == "too_short" and loc in deeper:  # pydantic counts the items that failed as missing: said below
            continue
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, Problems):
            out.update(((location(loc + sub), message), None) for sub, message in error.problems)
            continue
        if loc[-1:] == ("[key]",):  # a mapping's key: reported at the mapping (the message names the key)
            loc = loc[:-2]
        if kind in ("extra_forbidden", "unexpected_keyword_argument"):
            known = _walk(schema, loc[:-1])[0]
            message = f"unknown {'field' if len(loc) == 1 else 'key'}{suggest(str(loc[-1]), known)}"
        elif kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
            message = "missing required field"
        elif kind in ("value_error", "assertion_error") and error is not None:
            message = str(error)
        else:  # a type error: what the field accepts (a custom error of type "expected" words a type's own)
            info = _walk(schema, loc)[1]
            extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
            what = extra.get("allowed") or (e["msg"] if kind == "expected" else
                                            field_allowed(info) if info is not None else e["msg"].lower())
            message = f"expected {what}, got {e['input']!r}"
        out[(location(loc), message)] = None
    return list(out)

# ---- the notebooks' parameters cell ----------------------------------------------------------------------------

def _literal(value: Any) -> str:
    """``value`` as the cell writes it: JSON-style strings, floats below 0.01 in exponent form (``1.0e-5``)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if value != 0 and math.isfinite(value) and abs(value) < 1e-2:
            mantissa, exponent = f"{value:.15e}".split("e")
            mantissa = mantissa.rstrip("0")
            return f"{mantissa}0e{int(exponent)}" if mantissa.endswith(".") else f"{mantissa}e{int(exponent)}"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"no cell literal for {value!r}")


def _hint(annotation: Any) -> str:
    """The cell's type hint, as ``papermill --help-notebook`` shows it: ``int``, ``"Optional[float]"``,
    ``"list[str]"`` (a ``Literal`` is the type of its values)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return type(get_args(annotation)[0]).__name__
    if get_origin(annotation) is list:
        return f'"list[{_hint(args[0]).strip(chr(34))}]"'
    if type(None) in get_args(annotation):
        return f'"Optional[{_hint(args[0]).strip(chr(34))}]"'
    return annotation.__name__


def parameters_source(cls: type[Params]) -> str:
    """The ``parameters`` cell of ``cls``'s notebook: one typed assignment per field, by section, with its help."""
    by_section: dict[str, list[str]] = {s: [] for s in SECTIONS}
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        line = f"{name}: {_hint(info.annotation)} = {_literal(info.default)}"
        by_section[str(extra.get("section", "data"))].append(f"{line}  # {info.description}" if info.description
                                                             else line)
    header = ("# Stamped by `python -m r3f_utils.colab` from r3f_utils/params.py "
              f"({cls.__name__}); edit there, not here.")
    blocks = [f"# {cls.TITLES.get(s, SECTIONS[s])}\n" + "\n".join(lines) for s, lines in by_section.items() if lines]
    return header + "\n" + "\n\n".join(blocks)
