"""The paper's recipes as facts: the reference GLUE table, dataset statistics, the FLOP cost model and the
summarization budgets. Torch-free and registry-free: :mod:`r3f_utils.families` costs each family with it,
:mod:`r3f_utils.describe` checks registry rows against it (``validate --profile paper``: a summarization row whose
batch, updates, warmup or evaluation interval differ from the budget below fails).

Summarization budgets come from sources where there are any (:data:`PUBLISHED_BUDGETS`):

* CNN/DM: fairseq's BART recipe (``examples/bart/README.summarization.md``): 20,000 updates, 500 warmup, on
  ``--max-tokens 2048`` x 8 GPUs x ``--update-freq 4`` = 65,536 tokens per update;
* Reddit TIFU: 200,000 updates, 5,000 warmup, ``MAX_TOKENS=2048``, ``UPDATE_FREQ=4`` on one GPU (8,192 tokens
  per update), as a user read them from the R3F paper's appendix in fairseq issue #4411 (the paper's appendix
  itself could not be read; the thread is the only published evidence);
* Gigaword: **no published budget**; assumed: CNN/DM's tokens per update (65,536) and CNN/DM's number of epochs
  (20,000 updates of 65,536 tokens = 5.31 epochs), with CNN/DM's 2.5% warmup (500/20,000).

fairseq batches by tokens, about ``tokens per update / mean source tokens`` documents per update (a document
costs max(source, target) tokens, and the source is the longer one). Here a run updates on ``batch_size x
gradient_accumulation_steps`` documents, so that product is the derived documents-per-update rounded to whole
micro-batches; the validation loss is computed at least ``MIN_EVALUATIONS`` times so that the best checkpoint
can be chosen. The length statistics are estimates from published word counts (x1.3 BPE tokens per word,
sources truncated at 1,024 tokens), so the documents per update are approximate.

GPU-hours are ``6 x non-embedding parameters x tokens`` FLOPs (x 4/3 for R3F/R4F: Table 1's 4 vs 3
forward-pass units), on one A100-80GB at 312 TFLOP/s bf16 peak and an assumed utilisation of 40% for forwards
of at least 16k tokens, proportionally less for smaller ones (a GLUE batch of 32 short pairs keeps the GPU
mostly idle); training only (validation and decoding excluded). They are for planning, not a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUDGET_TOLERANCE",
    "MIN_EVALUATIONS",
    "TOKENS_PER_UPDATE",
    "Download",
    "SummarizationBudget",
    "derive_summarization_budget",
]

# fairseq examples/bart CNN/DM: --max-tokens 2048, 8 GPUs, --update-freq 4
TOKENS_PER_UPDATE = 2048 * 8 * 4
CNN_DM_UPDATES = 20000  # published (TOTAL_NUM_UPDATES) at TOKENS_PER_UPDATE
WARMUP_FRACTION = 500 / 20000  # published WARMUP_UPDATES / TOTAL_NUM_UPDATES
MICRO_BATCH = {"cnn_dailymail": 8, "gigaword": 128, "reddit_tifu": 8}  # documents per forward on one GPU
# dataset -> (updates, warmup updates, tokens per update, where the numbers come from)
PUBLISHED_BUDGETS: dict[str, tuple[int, int, int, str]] = {
    "cnn_dailymail": (CNN_DM_UPDATES, 500, TOKENS_PER_UPDATE,
                      "published: fairseq examples/bart/README.summarization.md, TOTAL_NUM_UPDATES=20000, "
                      "WARMUP_UPDATES=500, --max-tokens 2048 x 8 GPUs x --update-freq 4"),
    "reddit_tifu": (200000, 5000, 2048 * 1 * 4,
                    "published only as a reading of the paper's appendix in fairseq issue #4411 "
                    "(github.com/facebookresearch/fairseq/issues/4411): TOTAL_NUM_UPDATES=200000, WARMUP_UPDATES=5000, "
                    "MAX_TOKENS=2048, UPDATE_FREQ=4, one GPU"),
}
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
    tokens_per_update: int = TOKENS_PER_UPDATE
    source: str = ""  # where updates and warmup come from ("" = assumed, see derivation())

    def derivation(self) -> str:
        """The budget and where it comes from, as one paragraph for a row's notes."""
        docs, src, _ = SUMMARIZATION_STATS[self.dataset]
        if self.source:
            origin = (f"Budget: {self.updates:,} updates, warmup {self.warmup_updates:,} ({self.source}); "
                      f"{self.tokens_per_update:,} tokens per update")
        else:
            origin = (f"Budget ASSUMED (no published {self.dataset} budget): fairseq's CNN/DM tokens per update "
                      f"({self.tokens_per_update:,} = --max-tokens 2048 x 8 GPUs x --update-freq 4) and CNN/DM's "
                      f"number of epochs (20,000 updates of 65,536 tokens = {self.epochs:.2f} epochs), warmup 2.5% "
                      f"(as 500/20,000); {self.tokens_per_update:,} tokens per update")
        return (f"{origin} / ~{src:.0f} source tokens per document = ~{self.tokens_per_update / src:.0f} documents "
                f"per update, here batch_size {self.batch_size} x gradient_accumulation_steps "
                f"{self.gradient_accumulation_steps} = {self.documents_per_update}; {self.updates} updates = "
                f"{self.epochs:.2f} epochs of {docs:,} documents; validation loss every {self.eval_steps} updates "
                f"(r3f_utils.recipes). Estimated ~{self.gpu_hours():.1f} GPU-hours (BART+R3F "
                f"~{self.gpu_hours('r3f'):.1f}) on one {GPU[0]}.")

    def gpu_hours(self, method: str = "standard") -> float:
        """Estimated training GPU-hours of bart-large on this budget (see the module docstring)."""
        _, src, tgt = SUMMARIZATION_STATS[self.dataset]
        hours = _gpu_hours("facebook/bart-large", method, self.updates * self.documents_per_update,
                           src * PADDING_FACTOR, tgt * PADDING_FACTOR, self.batch_size)
        return float(hours or 0.0)


def derive_summarization_budget(dataset: str) -> SummarizationBudget:
    """The budget of ``dataset``: the published updates and warmup where there are any (:data:`PUBLISHED_BUDGETS`),
    else CNN/DM's epochs (an assumption, said in :meth:`SummarizationBudget.derivation`); documents per update from
    the recipe's tokens per update and the dataset's length statistics."""
    if dataset not in SUMMARIZATION_STATS:
        raise ValueError(f"no length statistics for summarization dataset {dataset!r}; "
                         f"known: {sorted(SUMMARIZATION_STATS)}")
    published = PUBLISHED_BUDGETS.get(dataset)
    tokens = published[2] if published else TOKENS_PER_UPDATE
    micro = MICRO_BATCH[dataset]
    accumulation = max(1, round(tokens / SUMMARIZATION_STATS[dataset][1] / micro))
    per_update = micro * accumulation
    train = SUMMARIZATION_STATS[dataset][0]
    if published:
        updates, warmup = published[0], published[1]
    else:
        cnn_docs, cnn_source, _ = SUMMARIZATION_STATS["cnn_dailymail"]
        epochs = CNN_DM_UPDATES * (TOKENS_PER_UPDATE / cnn_source) / cnn_docs  # the published recipe's epochs
        updates = max(1, round(epochs * train / per_update))
        warmup = round(WARMUP_FRACTION * updates)
    eval_steps = min(math.ceil(train / per_update), updates // (2 * MIN_EVALUATIONS) or 1)
    return SummarizationBudget(dataset, per_update, micro, accumulation, updates, warmup,
                               updates * per_update / train, eval_steps, tokens, published[3] if published else "")


def _method_cost(method: str, params: Mapping[str, Any]) -> float | None:
    """Cost per step relative to standard fine-tuning (Table 1: xFP 3; R3F/R4F 4; SMART/FreeLB 3 + 3S).

    S: the run's ``<method>_ascent_steps`` (the GLUE-like families), else its ``ascent_steps`` (the compute_cost
    family's one S for both methods), else 1."""
    if method in ("smart", "freelb"):
        return 1.0 + float(params.get(f"{method}_ascent_steps", params.get("ascent_steps", 1)))
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
