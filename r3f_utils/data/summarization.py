"""Table 4 data: CNN/DailyMail 3.0.0, Gigaword and Reddit TIFU (long), from the Hub or from local files.

Every loader goes through :func:`r3f_utils.data.sources.load_split`, so the Hub, a user's own copy
(``<data_dir>/<split>.jsonl|json|csv|parquet`` with the Hub's field names, or a copy of the Hub's Parquet
conversion ``<data_dir>/<config>/<split>/*.parquet``) and the repository's fixture files take the same code
path. Gigaword and Reddit TIFU are loading scripts on the Hub's main branch, which ``datasets`` 4+ refuses:
they are read from the Hub's Parquet conversion (``revision="refs/convert/parquet"``). The result always has
two text columns, ``source`` and ``target``.

Reddit TIFU has no official split (the Hub has only ``train``; the paper does not say how it was cut,
fairseq issue #4083). This module cuts it 80/10/10 into train/validation/test by a stable hash of each
post (:func:`reddit_tifu_split_of`): independent of row order and of the copy's size, identical posts
always land in the same split, and ``split_seed`` picks another cut.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import datasets

from r3f_utils.data.sources import PARQUET_CONVERSION, DatasetUnavailableError, load_split
from r3f_utils.sentences import sentences_per_line

__all__ = [
    "REDDIT_TIFU_FRACTIONS",
    "SPLITS",
    "SUMMARIZATION_DATASETS",
    "SummarizationDataset",
    "get_summarization_dataset",
    "load_summarization",
    "reddit_tifu_split_of",
    "reference_text",
    "target_text",
]

SPLITS = ("train", "validation", "test")
# Reddit TIFU: this project's documented cut of the single Hub split (train/validation/test)
REDDIT_TIFU_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SummarizationDataset:
    """Where a summarization dataset lives and which fields hold the document and the summary."""

    name: str
    hub_id: str
    config: str | None
    source_field: str
    target_field: str
    hub_splits: tuple[str, ...]  # the splits the Hub (and a local copy) provides
    description: str
    revision: str | None = None  # Hub revision; PARQUET_CONVERSION where the main branch is a loading script


SUMMARIZATION_DATASETS: dict[str, SummarizationDataset] = {
    "cnn_dailymail": SummarizationDataset(
        "cnn_dailymail",
        "abisee/cnn_dailymail",
        "3.0.0",
        "article",
        "highlights",
        SPLITS,
        "287,113/13,368/11,490 news articles; highlights are 3-4 sentences, one per line",
    ),
    "gigaword": SummarizationDataset(
        "gigaword",
        "Harvard/gigaword",
        "default",
        "document",
        "summary",
        SPLITS,
        "3.8M/189k/1,951 first sentences -> headlines; lower-cased, PTB-escaped, digits as #",
        PARQUET_CONVERSION,
    ),
    "reddit_tifu": SummarizationDataset(
        "reddit_tifu",
        "ctr4si/reddit_tifu",
        "long",
        "documents",
        "tldr",
        ("train",),
        "42,139 posts -> TL;DR (the 'long' config); one Hub split, cut 80/10/10 here",
        PARQUET_CONVERSION,
    ),
}


def get_summarization_dataset(name: str) -> SummarizationDataset:
    """The spec of ``name``; ValueError listing the known datasets otherwise."""
    try:
        return SUMMARIZATION_DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown summarization dataset {name!r}; choose one of {sorted(SUMMARIZATION_DATASETS)}"
        ) from None


def reddit_tifu_split_of(title: str, document: str, split_seed: int = 0) -> str:
    """The split (train/validation/test) of one Reddit TIFU post: SHA-256 of ``split_seed``, title and text
    mapped to [0, 1), then cut at :data:`REDDIT_TIFU_FRACTIONS` (0.8 / 0.9)."""
    digest = hashlib.sha256(f"{split_seed}\x00{title}\x00{document}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split, fraction in REDDIT_TIFU_FRACTIONS.items():
        edge += fraction
        if u < edge:
            return split
    return "test"


def _check_fields(ds: datasets.Dataset, spec: SummarizationDataset, where: str) -> None:
    missing = [f for f in (spec.source_field, spec.target_field) if f not in ds.column_names]
    if missing:
        raise ValueError(
            f"{spec.name} ({where}): missing field(s) {missing}; found {ds.column_names}. "
            f"Local files need the Hub's field names: {spec.source_field!r} (document) "
            f"and {spec.target_field!r} (summary)."
        )


def _load_hub_or_local(
    spec: SummarizationDataset, split: str, data_dir: str | Path | None
) -> datasets.Dataset:
    try:
        return load_split(spec.hub_id, spec.config, split, data_dir=data_dir, revision=spec.revision)
    except RuntimeError as err:
        if isinstance(err, DatasetUnavailableError) or "scripts are no longer supported" not in str(err):
            raise
        raise DatasetUnavailableError(  # datasets>=4 cannot run the Hub repo's loading script
            f"{spec.hub_id} is a script dataset that datasets>=4 cannot load ({err}). "
            f"Download its Parquet export (revision refs/convert/parquet) as {split}.parquet, or write "
            f"{split}.jsonl with fields {spec.source_field!r} and {spec.target_field!r}, "
            "and pass data_dir=<that folder>."
        ) from err


def load_summarization(
    name: str,
    split: str,
    *,
    data_dir: str | Path | None = None,
    max_samples: int | None = None,
    split_seed: int = 0,
) -> datasets.Dataset:
    """One split of a Table 4 dataset as a ``Dataset`` with the columns ``source`` and ``target``.

    Args:
        name: ``cnn_dailymail``, ``gigaword`` or ``reddit_tifu``.
        split: ``train``, ``validation`` or ``test`` (Reddit TIFU: cut from the single Hub split).
        data_dir: folder with ``<split>.jsonl|json|csv|parquet`` (Reddit TIFU: ``train.*`` only) in the Hub's
            field layout, or a copy of the Hub's Parquet conversion (``<config>/<split>/*.parquet``) for the
            datasets read from it; None reads the Hub.
        max_samples: keep the first N examples (after the Reddit TIFU cut).
        split_seed: Reddit TIFU only: which 80/10/10 cut (:func:`reddit_tifu_split_of`).

    Raises:
        DatasetUnavailableError: offline without ``data_dir``, or ``data_dir`` lacks the file; the message
            names the dataset and both fixes.
        ValueError: unknown dataset or split, or files without the expected fields.
    """
    spec = get_summarization_dataset(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {name}; choose one of {list(SPLITS)}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be None or a positive integer, not {max_samples!r}")
    hub_split = split if split in spec.hub_splits else spec.hub_splits[0]
    ds = _load_hub_or_local(spec, hub_split, data_dir)
    _check_fields(ds, spec, str(data_dir) if data_dir is not None else spec.hub_id)
    if hub_split != split or name == "reddit_tifu":
        titles = ds["title"] if "title" in ds.column_names else [""] * len(ds)
        keep = [
            i
            for i, (t, d) in enumerate(zip(titles, ds[spec.source_field], strict=True))
            if reddit_tifu_split_of(t or "", d or "", split_seed) == split
        ]
        ds = ds.select(keep)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    ds = ds.select_columns([spec.source_field, spec.target_field])
    return ds.rename_columns({spec.source_field: "source", spec.target_field: "target"})


def target_text(summary: str) -> str:
    """The training target: the summary on one line (CNN/DM highlights are joined with spaces, as in
    BART's preprocessing)."""
    return " ".join(summary.split())


def reference_text(summary: str) -> str:
    """The ROUGE reference: one sentence per line (CNN/DM keeps its own highlight lines)."""
    return sentences_per_line(summary)
