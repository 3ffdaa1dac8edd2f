"""ROUGE as the summarization papers (BART, PEGASUS, R3F) report it, computed with ``rouge_score``.

What makes the numbers comparable with Table 4 of the paper (and with the ROUGE-1.5.5 Perl script they
come from, run as ``-m`` with summary-level LCS):

* F-measure × 100, with Porter stemming of tokens longer than 3 characters;
* ROUGE-L is the **summary-level** LCS, ``rougeLsum``, on text with one sentence per line: both sides go
  through :func:`r3f_utils.sentences.sentences_per_line` (an offline splitter; nltk's punkt needs a
  download). Plain sentence-free ``rougeL`` is reported too, but it is not the paper's ROUGE-L;
* the exact mean over examples, not ``BootstrapAggregator``'s "mid" (a median of unseeded resamples).

Tokens are stemmed through a memo (the same Porter stemmer, each distinct word stemmed once), and large
corpora are scored in worker processes; both give exactly ``rouge_score``'s numbers, only faster.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import re
from collections.abc import Mapping, Sequence

from nltk.stem import porter
from rouge_score import rouge_scorer

from r3f_utils.sentences import sentences_per_line

__all__ = [
    "PAPER_ROUGE_TYPES",
    "ROUGE_TYPES",
    "CachedStemTokenizer",
    "compute_rouge",
    "score_pairs",
]

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# the three numbers of each Table 4 cell: R1 / R2 / RL, where RL is summary-level (rougeLsum)
PAPER_ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeLsum")
# below this many pairs one process is faster than starting workers
PARALLEL_MIN_PAIRS = 2000

# the same patterns as rouge_score.tokenize
_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


class CachedStemTokenizer:
    """``rouge_score``'s default tokenizer (lower-case, split on non-alphanumerics, Porter-stem words of
    more than 3 characters) with a memo on the stemmer: identical tokens, several times faster."""

    def __init__(self, use_stemmer: bool = True) -> None:
        self._stem = (
            functools.lru_cache(maxsize=1 << 18)(porter.PorterStemmer().stem) if use_stemmer else None
        )

    def tokenize(self, text: str) -> list[str]:
        tokens = _SPACES.split(_NON_ALPHANUM.sub(" ", text.lower()))
        if self._stem is not None:
            tokens = [self._stem(t) if len(t) > 3 else t for t in tokens]
        return [t for t in tokens if _VALID_TOKEN.match(t)]


def _check_rouge_types(rouge_types: Sequence[str]) -> None:
    for rouge_type in rouge_types:
        if not re.fullmatch(r"rouge[1-9]|rougeL|rougeLsum", rouge_type):
            raise ValueError(
                f"unknown ROUGE type {rouge_type!r}; use rouge1..rouge9, 'rougeL' or 'rougeLsum'"
            )


def _score_chunk(args: tuple[Sequence[str], Sequence[str], tuple[str, ...], bool]) -> list[dict[str, float]]:
    predictions, references, rouge_types, use_stemmer = args
    scorer = rouge_scorer.RougeScorer(list(rouge_types), tokenizer=CachedStemTokenizer(use_stemmer))
    out = []
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(sentences_per_line(reference), sentences_per_line(prediction))
        out.append({k: 100.0 * s.fmeasure for k, s in scores.items()})
    return out


def score_pairs(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = True,
    num_workers: int | None = None,
) -> list[dict[str, float]]:
    """Per-example ROUGE F-measures ×100, ``{rouge_type: value}`` for each (prediction, reference) pair.

    Both texts are put one sentence per line first (existing line breaks are kept as boundaries).
    ``num_workers`` processes score large inputs (default: the CPU count for ``PARALLEL_MIN_PAIRS`` pairs
    or more, else 1).
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: "
            "pass exactly one reference per prediction"
        )
    rouge_types = tuple(rouge_types)
    _check_rouge_types(rouge_types)
    n = len(predictions)
    if num_workers is None:
        num_workers = (os.cpu_count() or 1) if n >= PARALLEL_MIN_PAIRS else 1
    num_workers = max(1, min(num_workers, n))
    if num_workers == 1:
        return _score_chunk((predictions, references, rouge_types, use_stemmer))
    size = math.ceil(n / num_workers)
    chunks = [
        (list(predictions[i : i + size]), list(references[i : i + size]), rouge_types, use_stemmer)
        for i in range(0, n, size)
    ]
    # fork: the workers only run pure Python (no torch/OpenMP), and start in milliseconds
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with context.Pool(num_workers) as pool:
        parts = pool.map(_score_chunk, chunks)
    return [scores for part in parts for scores in part]


def compute_rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    use_stemmer: bool = True,
    num_workers: int | None = None,
) -> dict[str, float]:
    """Corpus ROUGE: the exact mean over examples of each F-measure ×100 (``rougeLsum`` = the paper's RL).

    Example:
        >>> round(compute_rouge(["the cat sat on the mat"], ["the cat sat on a mat"])["rouge1"], 2)
        83.33
    """
    if not predictions:
        raise ValueError("no predictions to score: ROUGE of an empty corpus is undefined")
    per_example = score_pairs(
        predictions, references, rouge_types=rouge_types, use_stemmer=use_stemmer, num_workers=num_workers
    )
    return {k: math.fsum(s[k] for s in per_example) / len(per_example) for k in rouge_types}


def paper_triple(scores: Mapping[str, float]) -> str:
    """Format ``scores`` like a Table 4 cell: ``R1/R2/RL`` with RL = ``rougeLsum``, two decimals."""
    return "/".join(f"{scores[k]:.2f}" for k in PAPER_ROUGE_TYPES)
