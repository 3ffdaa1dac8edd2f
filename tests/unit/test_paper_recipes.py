"""The paper profile's recipes: Hub datasets in a form the pinned ``datasets`` loads (the Parquet conversion
of loading-script repositories, read through the same call from a local copy), the registry's dataset
mapping, derived budgets and ``validate --profile paper``.

Budget: ~3 s (offline, no model).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from r3f_utils.data import sources
from r3f_utils.data.sources import PARQUET_CONVERSION, load_split
from r3f_utils.data.summarization import SUMMARIZATION_DATASETS, load_summarization
from r3f_utils.registry import load_registry

REGISTRY = Path(__file__).resolve().parents[2] / "results_registry.yaml"


def _write_conversion(root: Path, config: str, split: str, rows: dict[str, list], shards: int = 2) -> None:
    """A local copy of the Hub's Parquet conversion branch: <config>/<split>/0000.parquet, 0001.parquet, ..."""
    folder = root / config / split
    folder.mkdir(parents=True)
    for shard in range(shards):
        part = {k: v[shard::shards] for k, v in rows.items()}
        datasets.Dataset.from_dict(part).to_parquet(str(folder / f"{shard:04d}.parquet"))


def test_gigaword_and_reddit_tifu_load_from_a_copy_of_the_parquet_conversion(tmp_path) -> None:
    giga = {"document": [f"doc {i} words here" for i in range(6)], "summary": [f"head {i}" for i in range(6)]}
    _write_conversion(tmp_path / "gigaword", "default", "test", giga)
    test = load_summarization("gigaword", "test", data_dir=tmp_path / "gigaword")
    assert sorted(test["target"]) == sorted(giga["summary"]) and test.column_names == ["source", "target"]
    posts = [f"post number {i} about something" for i in range(40)]
    reddit = {"documents": posts, "tldr": [f"tldr {i}" for i in range(40)], "title": [f"t{i}" for i in range(40)]}
    _write_conversion(tmp_path / "reddit_tifu", "long", "train", reddit)
    _write_conversion(tmp_path / "reddit_tifu", "short", "train", {k: v[:3] for k, v in reddit.items()})
    parts = [load_summarization("reddit_tifu", s, data_dir=tmp_path / "reddit_tifu") for s in ("train", "validation",
                                                                                               "test")]
    assert sum(len(p) for p in parts) == 40  # the 'long' config only, all its shards, cut 80/10/10


def test_the_hub_and_a_local_copy_take_the_same_datasets_call(tmp_path, monkeypatch) -> None:
    calls: list[tuple] = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_dict({"document": ["d"], "summary": ["s"]})

    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr(sources.datasets, "load_dataset", fake_load_dataset)
    (tmp_path / "default" / "test").mkdir(parents=True)
    spec = SUMMARIZATION_DATASETS["gigaword"]
    load_split(spec.hub_id, spec.config, "test", revision=spec.revision)
    load_split(spec.hub_id, spec.config, "test", revision=spec.revision, data_dir=tmp_path)
    hub, local = calls
    assert hub == (("parquet",), {"data_files": {"test": "hf://datasets/Harvard/gigaword@refs/convert/parquet/"
                                                          "default/test/*.parquet"}, "split": "test"})
    assert local == (("parquet",), {"data_files": {"test": f"{tmp_path}/default/test/*.parquet"}, "split": "test"})


def test_registry_records_the_loaders_hub_id_config_and_revision() -> None:
    rows = [r for r in load_registry(REGISTRY, check_notebooks=False) if r.task == "summarization"]
    for row in rows:
        spec = SUMMARIZATION_DATASETS[row.id.split(".")[1]]
        assert (row.dataset.hub_id, row.dataset.config, row.dataset.revision) == (
            spec.hub_id, spec.config, spec.revision), row.id
    assert {r.dataset.revision for r in rows if "gigaword" in r.id or "reddit" in r.id} == {PARQUET_CONVERSION}


def test_registry_rejects_a_bad_revision(tmp_path) -> None:
    text = REGISTRY.read_text().replace("revision: refs/convert/parquet}", "revision: 7}", 1)
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"dataset\.revision.*expected a Hub revision"):
        load_registry(tmp_path / "r.yaml", check_notebooks=False)
