"""Load one split of a dataset from local files or from the Hub, through the same ``datasets`` code path.

Local files are ``<data_dir>/<split>.jsonl`` (or ``.json``, ``.csv``, ``.parquet``: e.g. the Hub's Parquet
export) with the Hub dataset's field names, so the loaders of each family (GLUE, XNLI, summarization) read a
user's own copy, the fixture files of the smoke profile and the Hub alike. Offline without local files, the
error names the dataset and both fixes at once, instead of the Hub client's long retries.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


class DatasetUnavailableError(RuntimeError):
    """A dataset can be read neither from local files nor from the Hub."""


def _offline() -> bool:
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in flags)


def _fixes(hub_id: str, config: str | None, split: str) -> str:
    name = f"{hub_id}" + (f" ({config})" if config else "")
    return (
        f"Either put the {split!r} split of {name} in a local folder as {split}.jsonl, {split}.json, "
        f"{split}.csv or {split}.parquet with the Hub's field names and pass data_dir=<that folder>, or go online "
        f"(unset HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) so that it can be downloaded from the Hub."
    )


def local_split_file(data_dir: str | Path, split: str) -> Path | None:
    """The file that holds ``split`` in ``data_dir``, or None."""
    for suffix in LOCAL_SUFFIXES:
        path = Path(data_dir) / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def load_split(
    hub_id: str,
    config: str | None,
    split: str,
    *,
    data_dir: str | Path | None = None,
    revision: str | None = None,
) -> datasets.Dataset:
    """One split of ``hub_id``/``config``: from ``data_dir`` when given, else from the Hub.

    ``revision`` picks a Hub branch or commit, e.g. ``"refs/convert/parquet"`` for a dataset that only
    exists as a loading script, which ``datasets`` 4+ no longer runs.

    Raises:
        DatasetUnavailableError: ``data_dir`` lacks the split, or the Hub cannot be reached (offline).
    """
    if data_dir is not None:
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
        return datasets.load_dataset(hub_id, config, split=split, revision=revision)
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as err:
        raise DatasetUnavailableError(
            f"{hub_id} could not be loaded from the Hub ({err}). " + _fixes(hub_id, config, split)
        ) from err
