"""Load one split of a dataset from local files or from the Hub, through the same ``datasets`` code path.

Local files are ``<data_dir>/<split>.jsonl`` (or ``.json``, ``.csv``, ``.parquet``: e.g. the Hub's Parquet
export) with the Hub dataset's field names, so the loaders of each family (GLUE, XNLI, summarization) read a
user's own copy, the fixture files of the smoke profile and the Hub alike. Offline without local files, the
error names the dataset and both fixes at once, instead of the Hub client's long retries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a split is loaded: the registry tools read the constants below without it
    import datasets

LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# The Hub's automatic Parquet conversion of a dataset: a branch laid out as <config>/<split>/*.parquet
PARQUET_CONVERSION = "refs/convert/parquet"
# Hub repositories whose main branch is a loading script, which the pinned datasets (>= 4) refuses to run:
# they load only from PARQUET_CONVERSION (checked by `python -m r3f_utils validate`)
LOADING_SCRIPT_REPOS = frozenset({"Harvard/gigaword", "ctr4si/reddit_tifu"})


class DatasetUnavailableError(RuntimeError):
    """A dataset can be read neither from local files nor from the Hub."""


def _offline() -> bool:
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in flags)


def _fixes(hub_id: str, config: str | None, split: str) -> str:
    name = f"{hub_id}" + (f" ({config})" if config else "")
    return (
        f"Either put the {split!r} split of {name} in a local folder as {split}.jsonl, {split}.json, "
        f"{split}.csv or {split}.parquet with the Hub's field names (or a copy of the Hub's Parquet conversion, "
        f"<config>/{split}/*.parquet) and pass data_dir=<that folder>, or go online "
        f"(unset HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) so that it can be downloaded from the Hub."
    )


def local_split_file(data_dir: str | Path, split: str) -> Path | None:
    """The file that holds ``split`` in ``data_dir``, or None."""
    for suffix in LOCAL_SUFFIXES:
        path = Path(data_dir) / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def conversion_files(base: str | Path, config: str | None, split: str) -> str:
    """The glob of one split in the Hub's Parquet conversion layout: ``<base>/<config>/<split>/*.parquet``.

    ``base`` is a local folder or ``hf://datasets/<id>@<revision>``; a dataset without configs is ``default``.
    """
    return f"{str(base).rstrip('/')}/{config or 'default'}/{split}/*.parquet"


def hub_conversion_base(hub_id: str, revision: str = PARQUET_CONVERSION) -> str:
    """``hf://`` address of a Hub revision (huggingface_hub reads ``refs/convert/...`` unquoted)."""
    return f"hf://datasets/{hub_id}@{revision}"


def _load_conversion(base: str | Path, config: str | None, split: str) -> datasets.Dataset:
    """One split of a Parquet conversion, local or on the Hub: the same ``datasets`` call for both."""
    import datasets

    return datasets.load_dataset("parquet", data_files={split: conversion_files(base, config, split)}, split=split)


def load_split(
    hub_id: str,
    config: str | None,
    split: str,
    *,
    data_dir: str | Path | None = None,
    revision: str | None = None,
) -> datasets.Dataset:
    """One split of ``hub_id``/``config``: from ``data_dir`` when given, else from the Hub.

    ``revision`` picks a Hub branch or commit. :data:`PARQUET_CONVERSION` (``"refs/convert/parquet"``) is
    the Hub's Parquet conversion, the only form of a loading-script dataset that ``datasets`` 4+ reads; it is
    read as ``<config>/<split>/*.parquet`` (``config`` None: ``default``), from the Hub or, with the same
    call, from a local copy of that branch in ``data_dir``.

    Raises:
        DatasetUnavailableError: ``data_dir`` lacks the split, or the Hub cannot be reached (offline).
    """
    import datasets

    conversion = revision == PARQUET_CONVERSION
    if data_dir is not None:
        if conversion and Path(data_dir, config or "default", split).is_dir():
            return _load_conversion(data_dir, config, split)
        path = local_split_file(data_dir, split)
        if path is None:
            raise DatasetUnavailableError(
                f"{hub_id}: no {split}.jsonl, {split}.json, {split}.csv or {split}.parquet in {data_dir}. "
                + _fixes(hub_id, config, split)
            )
        return datasets.load_dataset(LOCAL_SUFFIXES[path.suffix], data_files={split: str(path)}, split=split)
    if _offline():
        raise DatasetUnavailableError(
            f"{hub_id} is not available offline and no data_dir was given. " + _fixes(hub_id, config, split)
        )
    try:
        if conversion:
            return _load_conversion(hub_conversion_base(hub_id, revision), config, split)
        return datasets.load_dataset(hub_id, config, split=split, revision=revision)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as err:
        raise DatasetUnavailableError(
            f"{hub_id} could not be loaded from the Hub ({err}). " + _fixes(hub_id, config, split)
        ) from err
