"""What a registry row's recipe downloads and costs, and whether the paper profile can run it.

``python -m r3f_utils validate --profile paper`` prints, per target row, the Hub dataset id, config, revision
and splits its notebook will download, its updates, epochs and estimated GPU-hours, and fails on a row that
cannot run as registered:

* a dataset whose Hub main branch is a loading script (``datasets`` >= 4 refuses it) without the Parquet
  conversion revision (``refs/convert/parquet``);
* a row whose ``dataset`` differs from what its notebook's loader reads (one spelling per fact);
* a summarization row whose batch, updates or evaluation interval differ from the derivation below.

Summarization budgets are derived, not copied. fairseq batches by tokens: BART's CNN/DM recipe (the only
published one) updates on ``--max-tokens 2048`` x 8 GPUs x ``--update-freq 4`` = 65,536 tokens, i.e. about
``65,536 / mean source tokens`` documents per update (a document costs max(source, target) tokens, and the
source is the longer one). Here a run updates on ``batch_size x gradient_accumulation_steps`` documents, so
that product is the derived documents-per-update rounded to whole micro-batches; every dataset (Gigaword's
and Reddit TIFU's budgets are not published) trains for as many epochs as the published CNN/DM recipe
(20,000 updates of 65,536 tokens), with the same 2.5% warmup; the validation loss is computed at least
``MIN_EVALUATIONS`` times so that the best checkpoint can be chosen. The length statistics are estimates from
published word counts (x1.3 BPE tokens per word, sources truncated at 1,024 tokens), so the derivation is
approximate.

GPU-hours are ``6 x non-embedding parameters x tokens`` FLOPs (x 4/3 for R3F/R4F: Table 1's 4 vs 3
forward-pass units), on one A100-80GB at 312 TFLOP/s bf16 peak and an assumed utilisation of 40% for forwards
of at least 16k tokens, proportionally less for smaller ones (a GLUE batch of 32 short pairs keeps the GPU
mostly idle); training only (validation and decoding excluded). They are for planning, not a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from r3f_utils.data.sources import LOADING_SCRIPT_REPOS, PARQUET_CONVERSION
from r3f_utils.registry import DatasetRef, RegistryRow

__all__ = [
    "BUDGET_TOLERANCE",
    "MIN_EVALUATIONS",
    "TOKENS_PER_UPDATE",
    "Download",
    "RecipeDescription",
    "SummarizationBudget",
    "derive_summarization_budget",
    "describe_row",
    "describe_rows",
    "expected_dataset",
    "format_descriptions",
]

# fairseq examples/bart CNN/DM: --max-tokens 2048, 8 GPUs, --update-freq 4
TOKENS_PER_UPDATE = 2048 * 8 * 4
CNN_DM_UPDATES = 20000  # published (TOTAL_NUM_UPDATES) at TOKENS_PER_UPDATE
WARMUP_FRACTION = 500 / 20000  # published WARMUP_UPDATES / TOTAL_NUM_UPDATES
MICRO_BATCH = {"cnn_dailymail": 8, "gigaword": 128, "reddit_tifu": 8}  # documents per forward on one GPU
MIN_EVALUATIONS = 5
BUDGET_TOLERANCE = 0.1  # relative: registered documents per update and updates vs the derivation

# (training documents, mean source tokens after truncation, mean target tokens), BART BPE; estimates from
# published word counts: CNN/DM 781/56 words, Gigaword 31.4/8.3, Reddit TIFU (long) 433/23 (80% train cut)
SUMMARIZATION_STATS: dict[str, tuple[int, float, float]] = {
    "cnn_dailymail": (287113, 860.0, 73.0),
    "gigaword": (3803957, 41.0, 11.0),
    "reddit_tifu": (33711, 560.0, 30.0),
}
# (training examples, mean tokens per example incl. special tokens); RoBERTa BPE, estimates
GLUE_STATS: dict[str, tuple[int, float]] = {
    "mnli": (392702, 39.0), "qqp": (363846, 30.0), "qnli": (104743, 50.0), "rte": (2490, 68.0),
    "mrpc": (3668, 53.0), "cola": (8551, 11.0), "sst2": (67349, 13.0), "stsb": (5749, 31.0),
    "xnli": (392702, 39.0),  # English MNLI-translated training data
}
PADDING_FACTOR = 1.5  # tokens processed / real tokens with random (not length-grouped) batches
# non-embedding parameters: (encoder, decoder); encoder-only models have no decoder
NON_EMBEDDING_PARAMS: dict[str, tuple[float, float]] = {
    "FacebookAI/roberta-large": (302e6, 0.0),
    "FacebookAI/xlm-roberta-large": (302e6, 0.0),
    "facebook/bart-large": (151e6, 201e6),
    # the sft family (decoder-only: counted as the 'encoder' part, every token is processed once per pass)
    "Qwen/Qwen2.5-0.5B": (358e6, 0.0),
    "meta-llama/Llama-3.2-1B": (974e6, 0.0),
}
# sft family: (training examples, mean tokens per example with the Alpaca prompt), estimates; the held-out
# examples are cut from these
SFT_STATS: dict[str, tuple[int, float]] = {"alpaca_cleaned": (51760, 230.0), "dolly": (15011, 330.0)}
GPU = ("A100-80GB", 312e12, 0.4)  # name, bf16 peak FLOP/s, assumed utilisation of a large forward
FULL_USE_TOKENS = 16384  # tokens per forward from which the assumed utilisation is reached
# Reference GLUE table (CM3 App. A.3 Tables 11 and 12, reprinting the RXF settings): task -> lr, updates, batch
PAPER_GLUE_HPARAMS: dict[str, dict[str, float | int]] = {
    "mnli": {"learning_rate": 5e-6, "max_updates": 123873, "batch_size": 8},
    "qnli": {"learning_rate": 5e-6, "max_updates": 33112, "batch_size": 8},
    "qqp": {"learning_rate": 5e-6, "max_updates": 113272, "batch_size": 32},
    "sst2": {"learning_rate": 5e-6, "max_updates": 20935, "batch_size": 32},
    "rte": {"learning_rate": 1e-5, "max_updates": 3120, "batch_size": 8},
    "mrpc": {"learning_rate": 1e-5, "max_updates": 2296, "batch_size": 16},
    "cola": {"learning_rate": 1e-5, "max_updates": 5336, "batch_size": 16},
}
METHOD_COST = {"standard": 1.0, "std++": 1.0, "r3f": 4 / 3, "r4f": 4 / 3,  # Table 1: xFP 3 vs 4
               "neftune": 1.0, "r3f_neftune": 4 / 3}  # sft family: NEFTune adds no pass


@dataclass(frozen=True)
class Download:
    """One split a run downloads from the Hub."""

    hub_id: str
    config: str | None
    split: str
    revision: str | None = None

    def __str__(self) -> str:
        where = self.hub_id + (f"/{self.config}" if self.config else "")
        return where + (f"@{self.revision}" if self.revision else "") + f":{self.split}"


@dataclass(frozen=True)
class SummarizationBudget:
    """A derived summarization budget (see the module docstring)."""

    dataset: str
    documents_per_update: int  # micro-batch x accumulation
    batch_size: int
    gradient_accumulation_steps: int
    updates: int
    warmup_updates: int
    epochs: float
    eval_steps: int

    def derivation(self) -> str:
        """The derivation as one sentence, for a row's notes."""
        docs, src, _ = SUMMARIZATION_STATS[self.dataset]
        return (f"Budget derived by r3f_utils.recipes: {TOKENS_PER_UPDATE:,} tokens per update (fairseq --max-tokens "
                f"2048 x 8 GPUs x --update-freq 4) / ~{src:.0f} source tokens per document = "
                f"~{TOKENS_PER_UPDATE / src:.0f} documents per update, here batch_size {self.batch_size} x "
                f"gradient_accumulation_steps {self.gradient_accumulation_steps} = {self.documents_per_update}; "
                f"{self.updates} updates = {self.epochs:.2f} epochs of {docs:,} documents, the epochs of the "
                f"published CNN/DM recipe (20,000 updates of 65,536 tokens); warmup {self.warmup_updates} (2.5%, as "
                f"500/20,000); validation loss every {self.eval_steps} updates. Estimated ~{self.gpu_hours():.1f} "
                f"GPU-hours (BART+R3F ~{self.gpu_hours('r3f'):.1f}) on one {GPU[0]}.")

    def gpu_hours(self, method: str = "standard") -> float:
        """Estimated training GPU-hours of bart-large on this budget (see the module docstring)."""
        _, src, tgt = SUMMARIZATION_STATS[self.dataset]
        hours = _gpu_hours("facebook/bart-large", method, self.updates * self.documents_per_update,
                           src * PADDING_FACTOR, tgt * PADDING_FACTOR, self.batch_size)
        return float(hours or 0.0)


def derive_summarization_budget(dataset: str) -> SummarizationBudget:
    """The budget of ``dataset`` from the recipe's tokens per update and the dataset's length statistics."""
    if dataset not in SUMMARIZATION_STATS:
        raise ValueError(f"no length statistics for summarization dataset {dataset!r}; "
                         f"known: {sorted(SUMMARIZATION_STATS)}")

    def docs_per_update(name: str) -> tuple[int, int]:
        micro = MICRO_BATCH[name]
        return micro, max(1, round(TOKENS_PER_UPDATE / SUMMARIZATION_STATS[name][1] / micro))

    micro, accumulation = docs_per_update(dataset)
    per_update = micro * accumulation
    cnn_docs, cnn_source, _ = SUMMARIZATION_STATS["cnn_dailymail"]
    epochs = CNN_DM_UPDATES * (TOKENS_PER_UPDATE / cnn_source) / cnn_docs  # the published recipe's epochs
    train = SUMMARIZATION_STATS[dataset][0]
    updates = max(1, round(epochs * train / per_update))
    eval_steps = min(math.ceil(train / per_update), updates // (2 * MIN_EVALUATIONS) or 1)
    return SummarizationBudget(dataset, per_update, micro, accumulation, updates, round(WARMUP_FRACTION * updates),
                               updates * per_update / train, eval_steps)


@dataclass
class RecipeDescription:
    """What one row's run downloads and costs, and why it cannot run as registered (``problems``)."""

    row: str
    experiment: str
    notebook: str | None
    downloads: list[Download] = field(default_factory=list)
    updates: int | None = None
    epochs: float | None = None
    gpu_hours: float | None = None
    problems: list[str] = field(default_factory=list)


def _configs(ref: DatasetRef) -> tuple[str | None, ...]:
    return ref.config if isinstance(ref.config, tuple) else (ref.config,)


def expected_dataset(row: RegistryRow) -> DatasetRef | None:
    """The ``dataset`` the row's notebook loader reads (hub id, config(s), revision; split from the row).

    KeyError for a notebook this module does not describe (``probing.ipynb``: the row's dataset is listed as is).
    """
    from r3f_utils.data.glue import GLUE_HUB_ID
    from r3f_utils.data.summarization import SUMMARIZATION_DATASETS
    from r3f_utils.data.xnli import XNLI_HUB_ID
    from r3f_utils.registry import XNLI_LANGUAGES

    split = row.dataset.split if row.dataset is not None else ""
    notebook = (row.notebook or "").rsplit("/", 1)[-1]
    params = row.parameters
    if notebook == "compute_cost.ipynb":
        return None
    if notebook in ("glue.ipynb", "wall_time.ipynb"):  # Figure 1 trains through the GLUE steps
        return DatasetRef(GLUE_HUB_ID, str(params.get("task")), split)
    if notebook == "xnli.ipynb":
        return DatasetRef(XNLI_HUB_ID, tuple(params.get("languages") or XNLI_LANGUAGES), split)
    if notebook == "summarization.ipynb":
        spec = SUMMARIZATION_DATASETS[str(params.get("dataset"))]
        return DatasetRef(spec.hub_id, spec.config, split, spec.revision)
    if notebook == "probing.ipynb":  # every GLUE task the study fine-tunes on or probes
        return DatasetRef(GLUE_HUB_ID, tuple(_probing_tasks(params)), split)
    if notebook == "sft.ipynb":
        from r3f_utils.experiments.sft import SFT_DATASETS

        return DatasetRef(SFT_DATASETS[str(params.get("dataset"))].hub_id, None, split)
    raise KeyError(row.notebook)  # a notebook this module does not describe


def _probing_tasks(params: Mapping[str, Any]) -> list[str]:
    """The GLUE tasks of a probing run (the notebook's defaults: the paper's tasks and chain)."""
    from r3f_utils.experiments.probing import PAPER_CHAIN, PAPER_PROBE_TASKS

    if params.get("experiment") == "generalization":
        return list(dict.fromkeys([str(params.get("source_task", "sst2")),
                                   *params.get("probe_tasks", PAPER_PROBE_TASKS)]))
    return list(params.get("chain", PAPER_CHAIN))


def _downloads(row: RegistryRow) -> list[Download]:
    from r3f_utils.data.glue import get_glue_task
    from r3f_utils.data.summarization import SUMMARIZATION_DATASETS

    ref = expected_dataset(row)
    if ref is None:
        return []
    notebook = (row.notebook or "").rsplit("/", 1)[-1]
    if notebook in ("glue.ipynb", "wall_time.ipynb"):
        task = get_glue_task(str(ref.config))
        return [Download(ref.hub_id, task.name, s) for s in ("train", *(h for _, h in task.dev_splits))]
    if notebook == "probing.ipynb":
        tasks = [get_glue_task(c) for c in _configs(ref)]
        return [Download(ref.hub_id, t.name, s) for t in tasks for s in ("train", *(h for _, h in t.dev_splits))]
    if notebook == "xnli.ipynb":
        return [Download(ref.hub_id, "en", "train"), Download(ref.hub_id, "en", "validation"),
                *(Download(ref.hub_id, lang, "test") for lang in _configs(ref))]
    if notebook == "sft.ipynb":  # one published split; validation and test are cut from it
        return [Download(ref.hub_id, None, "train")]
    spec = SUMMARIZATION_DATASETS[str(row.parameters.get("dataset"))]
    return [Download(spec.hub_id, spec.config, s, spec.revision) for s in spec.hub_splits]


def _method_cost(method: str, params: Mapping[str, Any]) -> float | None:
    """Cost per step relative to standard fine-tuning (Table 1: xFP 3; R3F/R4F 4; SMART/FreeLB 3 + 3S)."""
    if method in ("smart", "freelb"):
        return 1.0 + float(params.get(f"{method}_steps", 1))
    return METHOD_COST.get(method)


def _gpu_hours(model: str, method: str, examples: float, enc_tokens: float, dec_tokens: float,
               micro_batch: int, params: Mapping[str, Any] | None = None) -> float | None:
    """Training GPU-hours; ``*_tokens`` per example (padding included), ``micro_batch`` examples per forward."""
    cost = _method_cost(method, params or {})
    if model not in NON_EMBEDDING_PARAMS or cost is None:
        return None
    encoder, decoder = NON_EMBEDDING_PARAMS[model]
    flops = 6 * (encoder * enc_tokens + decoder * dec_tokens) * examples * cost
    utilisation = GPU[2] * min(1.0, micro_batch * (enc_tokens + dec_tokens) / FULL_USE_TOKENS)
    return flops / (GPU[1] * utilisation) / 3600


def _dataset_problems(row: RegistryRow) -> list[str]:
    ref = row.dataset
    problems = []
    if ref is not None and ref.hub_id in LOADING_SCRIPT_REPOS and ref.revision != PARQUET_CONVERSION:
        problems.append(f"dataset {ref.hub_id} is a loading-script repository, which the pinned datasets cannot "
                        f"load: set dataset.revision: {PARQUET_CONVERSION} (the Hub's Parquet conversion)")
    return problems


def _budget_problems(row: RegistryRow, budget: SummarizationBudget) -> list[str]:
    p = row.parameters
    per_update = int(p.get("batch_size", 8)) * int(p.get("gradient_accumulation_steps", 1))
    problems = []
    for name, registered, derived in (("documents per update (batch_size x gradient_accumulation_steps)",
                                       per_update, budget.documents_per_update),
                                      ("max_updates", int(p.get("max_updates", 0)), budget.updates)):
        if abs(registered - derived) > BUDGET_TOLERANCE * derived:
            problems.append(f"{name} is {registered}, the derivation gives {derived} "
                            f"(r3f_utils.recipes.derive_summarization_budget)")
    eval_steps = p.get("eval_steps")
    evaluations = int(p.get("max_updates", 0)) // int(eval_steps) if eval_steps else 0
    if evaluations < MIN_EVALUATIONS:
        problems.append(f"eval_steps {eval_steps!r} evaluates {evaluations} times; the best checkpoint needs at least "
                        f"{MIN_EVALUATIONS} (derived: eval_steps {budget.eval_steps})")
    return problems


def describe_row(row: RegistryRow, profile: str = "paper") -> RecipeDescription:
    """Downloads, updates, epochs, GPU-hours and problems of ``row`` in ``profile`` (target rows: the run)."""
    desc = RecipeDescription(row.id, row.experiment, row.notebook, problems=_dataset_problems(row))
    if row.role != "target" or row.notebook is None:
        return desc
    try:
        expected = expected_dataset(row)
    except KeyError:  # not described here (probing: several GLUE tasks per run): the row's own dataset only
        ref = row.dataset
        if ref is not None:
            desc.downloads = [Download(ref.hub_id, c, sp, ref.revision) for c in _configs(ref)
                              for sp in (ref.split if isinstance(ref.split, tuple) else (ref.split,))]
        return desc
    if expected != row.dataset:
        desc.problems.append(f"dataset is {row.dataset}, but its notebook's loader reads {expected}: "
                             "write the loader's hub_id/config/revision in the row")
    desc.downloads = _downloads(row)
    params = row.parameters_for(profile)
    notebook = row.notebook.rsplit("/", 1)[-1]
    model, method = str(params.get("model_name")), str(params.get("method"))
    if notebook in ("glue.ipynb", "xnli.ipynb", "wall_time.ipynb"):
        factor = float(params.get("longer_training_factor", 2.0)) if method == "std++" else 1.0
        desc.updates = max(1, round(int(params["max_updates"]) * factor))
        examples = desc.updates * int(params["batch_size"])
        train, tokens = GLUE_STATS["xnli" if notebook == "xnli.ipynb" else str(params["task"])]
        desc.epochs = examples / train
        desc.gpu_hours = _gpu_hours(model, method, examples, tokens * PADDING_FACTOR, 0.0, int(params["batch_size"]),
                                    params)
    elif notebook == "summarization.ipynb":
        dataset = str(params["dataset"])
        desc.updates = int(params["max_updates"])
        examples = desc.updates * int(params.get("batch_size", 8)) * int(params.get("gradient_accumulation_steps", 1))
        train, src, tgt = SUMMARIZATION_STATS[dataset]
        desc.epochs = examples / train
        desc.gpu_hours = _gpu_hours(model, method, examples, src * PADDING_FACTOR, tgt * PADDING_FACTOR,
                                    int(params.get("batch_size", 8)))
        if profile == "paper":
            desc.problems += _budget_problems(row, derive_summarization_budget(dataset))
    elif notebook == "sft.ipynb":  # full-fine-tuning FLOPs: an overestimate for LoRA (no weight gradients)
        desc.updates = int(params["max_updates"])
        batch = int(params.get("batch_size", 8))
        examples = desc.updates * batch * int(params.get("gradient_accumulation_steps", 1))
        train, tokens = SFT_STATS[str(params["dataset"])]
        desc.epochs = examples / train
        desc.gpu_hours = _gpu_hours(model, method, examples, tokens * PADDING_FACTOR, 0.0, batch)
    return desc


def relative_cost(notebook: str, params: Mapping[str, Any]) -> float:
    """A run's training work, only to order a batch longest first (the launcher): the estimated GPU-hours of
    :func:`describe_row`'s FLOP model where the model is one of the paper's, else token-passes (updates x
    examples per update x tokens per example from the dataset statistics above x Table 1's cost of the method),
    with fine-tuning stages of probing chains counted. ``params``: the notebook's defaults updated with the run's."""
    method = str(params.get("method", "standard"))
    steps = {"smart_steps": params.get("smart_steps", params.get("ascent_steps", 1)),
             "freelb_steps": params.get("freelb_steps", params.get("ascent_steps", 1))}
    longer = float(params.get("longer_training_factor") or 2.0) if method == "std++" else 1.0
    updates = float(params.get("max_updates") or 0) * longer
    batch = int(params.get("batch_size") or 1)
    examples = updates * batch * float(params.get("gradient_accumulation_steps") or 1)
    dec_tokens = 0.0
    if notebook == "summarization.ipynb":
        _, enc_tokens, dec_tokens = SUMMARIZATION_STATS.get(str(params.get("dataset")), (0, 512.0, 64.0))
    elif notebook == "compute_cost.ipynb":  # two trainers, each timed for warm-up + timing_steps steps
        examples = 2 * (1 + float(params.get("timing_steps") or 1)) * batch
        enc_tokens = float(params.get("max_length") or 128)
    elif notebook == "sft.ipynb":
        enc_tokens = SFT_STATS.get(str(params.get("dataset")), (0, 230.0))[1]
    elif notebook == "probing.ipynb":  # stages of the chain (or the source task); None: the reference table's
        study = params.get("experiment")
        tasks = [str(t) for t in params.get("chain") or ()] if study in ("retention", "degradation") else [
            str(params.get("source_task"))]
        cycles = int(params.get("cycles") or 1) if study == "retention" else 1
        stage_examples = {t: float(params.get("max_updates") or PAPER_GLUE_HPARAMS.get(t, {}).get("max_updates", 0))
                          * float(params.get("batch_size") or PAPER_GLUE_HPARAMS.get(t, {}).get("batch_size", 1))
                          for t in tasks}
        examples = cycles * longer * sum(stage_examples.values())
        enc_tokens = sum(stage_examples[t] * GLUE_STATS.get(t, (0, 64.0))[1] for t in tasks) / max(
            sum(stage_examples.values()), 1.0)
    else:
        task = "xnli" if notebook == "xnli.ipynb" else str(params.get("task") or params.get("source_task"))
        enc_tokens = GLUE_STATS.get(task, (0, 64.0))[1]
    hours = _gpu_hours(str(params.get("model_name")), method, examples, enc_tokens * PADDING_FACTOR,
                       dec_tokens * PADDING_FACTOR, batch, steps)
    return hours if hours is not None else examples * (enc_tokens + dec_tokens) * (_method_cost(method, steps) or 1.0)


def describe_rows(rows: Iterable[RegistryRow], profile: str = "paper") -> list[RecipeDescription]:
    """One description per row; rows of one experiment share a run, so only its first row is kept."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row.role == "target" and row.experiment in seen:
            continue
        seen.add(row.experiment)
        out.append(describe_row(row, profile))
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_descriptions(descriptions: Sequence[RecipeDescription], seeds: Mapping[str, int] | None = None) -> str:
    """A text table: row, updates, epochs, GPU-hours per run, downloads; then every problem."""
    lines = [f"{'row':<42} {'updates':>8} {'epochs':>7} {'GPU-h':>6}  downloads (hub_id/config@revision:split)"]
    total = 0.0
    for d in descriptions:
        if d.notebook is None and not d.problems:
            continue
        n = (seeds or {}).get(d.row, 1)
        total += (d.gpu_hours or 0.0) * n
        downloads = ", ".join(map(str, d.downloads)) or ("none (random token batches)" if d.notebook else "-")
        lines.append(f"{d.row:<42} {_fmt(d.updates, 'd'):>8} {_fmt(d.epochs, '.2f'):>7} "
                     f"{_fmt(d.gpu_hours, '.1f'):>6}  {downloads}")
    lines.append(f"estimated GPU-hours, all runs x seeds: {total:,.0f} (one {GPU[0]}, {GPU[2]:.0%} of "
                 f"{GPU[1] / 1e12:.0f} TFLOP/s bf16; training only; r3f_utils/recipes.py)")
    problems = [f"row '{d.row}': {p}" for d in descriptions for p in d.problems]
    if problems:
        lines.append(f"{len(problems)} problem(s):")
        lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def paper_profile_problems(descriptions: Sequence[RecipeDescription]) -> list[str]:
    """Every problem of every description, ``row '<id>': <problem>``."""
    return [f"row '{d.row}': {p}" for d in descriptions for p in d.problems]


def validate_paper_profile(rows: Sequence[RegistryRow], out: Any = None) -> int:
    """Print the paper profile's downloads and budgets (``format_descriptions``); 1 when a row cannot run."""
    import sys

    descriptions = describe_rows(rows, "paper")
    seeds = {d.row: next(r.seeds_needed for r in rows if r.id == d.row) for d in descriptions}
    print(format_descriptions(descriptions, seeds), file=out or sys.stdout)
    return 1 if paper_profile_problems(descriptions) else 0
