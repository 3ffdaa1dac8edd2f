"""Summarization loaders (CNN/DM, Gigaword, Reddit TIFU): fixtures and local files through the Hub's code path,
the seeded Reddit TIFU split, targets/references, offline errors, and the experiment config checks.

Budget: ~3 s (offline, no model).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from r3f_utils.data import DatasetUnavailableError
from r3f_utils.data.summarization import (
    REDDIT_TIFU_FRACTIONS,
    SUMMARIZATION_DATASETS,
    get_summarization_dataset,
    load_summarization,
    reddit_tifu_split_of,
    reference_text,
    target_text,
)
from r3f_utils.experiments.summarization import (
    DECODING,
    generation_kwargs,
    resolve_summarization_config,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "summarization"


def _rows(name: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name / f"{split}.jsonl").read_text().splitlines()]


def test_fixture_files_have_the_hub_field_layout() -> None:
    cnn = _rows("cnn_dailymail", "train")
    assert set(cnn[0]) == {"article", "highlights", "id"}
    assert all(2 <= len(r["highlights"].splitlines()) <= 4 for r in cnn)  # highlights: one sentence per line
    assert all(len(r["id"]) == 40 for r in cnn)
    giga = _rows("gigaword", "train")
    assert set(giga[0]) == {"document", "summary"}
    assert all(r["document"] == r["document"].lower() for r in giga)
    reddit = _rows("reddit_tifu", "train")
    assert set(reddit[0]) == {"ups", "num_comments", "upvote_ratio", "score", "documents", "tldr", "title"}
    assert not (FIXTURES / "reddit_tifu" / "test.jsonl").exists()  # like the Hub: a single split
    for name in ("cnn_dailymail", "gigaword"):
        assert [len(_rows(name, s)) for s in ("train", "validation", "test")] == [32, 8, 8]


@pytest.mark.parametrize("name", sorted(SUMMARIZATION_DATASETS))
def test_load_fixture_splits(name: str) -> None:
    for split in ("train", "validation", "test"):
        ds = load_summarization(name, split, data_dir=FIXTURES / name)
        assert ds.column_names == ["source", "target"]
        assert len(ds) > 0
        assert all(isinstance(s, str) and s for s in ds["source"])
    spec = get_summarization_dataset(name)
    first = load_summarization(name, "train", data_dir=FIXTURES / name)[0]
    raw = next(r for r in _rows(name, "train") if r[spec.source_field] == first["source"])
    assert first["target"] == raw[spec.target_field]  # the reference keeps its newlines


def test_local_csv_takes_the_same_path(tmp_path: Path) -> None:
    import csv

    rows = _rows("gigaword", "test")
    with (tmp_path / "test.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["document", "summary"])
        writer.writeheader()
        writer.writerows(rows)
    ds = load_summarization("gigaword", "test", data_dir=tmp_path)
    assert ds["source"] == [r["document"] for r in rows]
    assert ds["target"] == [r["summary"] for r in rows]


def test_max_samples_keeps_the_first_examples() -> None:
    ds = load_summarization("cnn_dailymail", "test", data_dir=FIXTURES / "cnn_dailymail", max_samples=3)
    assert ds["source"] == [r["article"] for r in _rows("cnn_dailymail", "test")[:3]]
    with pytest.raises(ValueError, match="max_samples"):
        load_summarization("cnn_dailymail", "test", data_dir=FIXTURES / "cnn_dailymail", max_samples=0)


def test_reddit_tifu_split_is_a_seeded_partition() -> None:
    splits = {
        s: load_summarization("reddit_tifu", s, data_dir=FIXTURES / "reddit_tifu")
        for s in ("train", "validation", "test")
    }
    docs = {s: set(ds["source"]) for s, ds in splits.items()}
    assert (
        not docs["train"] & docs["test"]
        and not docs["train"] & docs["validation"]
        and not docs["validation"] & docs["test"]
    )
    assert sum(len(ds) for ds in splits.values()) == len(_rows("reddit_tifu", "train"))
    # stable: the same post always lands in the same split, whatever the order or size of the copy
    row = _rows("reddit_tifu", "train")[0]
    assert reddit_tifu_split_of(row["title"], row["documents"]) == reddit_tifu_split_of(
        row["title"], row["documents"], 0
    )
    # another seed gives another cut
    other = load_summarization("reddit_tifu", "test", data_dir=FIXTURES / "reddit_tifu", split_seed=1)
    assert set(other["source"]) != docs["test"]


def test_reddit_tifu_fractions_are_80_10_10() -> None:
    assert REDDIT_TIFU_FRACTIONS == {"train": 0.8, "validation": 0.1, "test": 0.1}
    counts = Counter(reddit_tifu_split_of(f"title {i}", f"post number {i}") for i in range(20_000))
    assert counts["train"] / 20_000 == pytest.approx(0.8, abs=0.01)
    assert counts["validation"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts["test"] / 20_000 == pytest.approx(0.1, abs=0.01)


def test_targets_and_references() -> None:
    highlights = "Police said two people were hurt.\nThe road was closed for 3.5 hours."
    assert target_text(highlights) == "Police said two people were hurt. The road was closed for 3.5 hours."
    assert reference_text(highlights) == highlights
    assert reference_text("One sentence here. Another one there.") == "One sentence here.\nAnother one there."


def test_offline_error_is_fast_and_names_dataset_and_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError) as info:
        load_summarization("cnn_dailymail", "test")
    assert time.perf_counter() - start < 2
    message = str(info.value)
    assert "abisee/cnn_dailymail" in message and "data_dir" in message and "HF_HUB_OFFLINE" in message


def test_missing_local_file_and_bad_fields(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match=r"no test\.jsonl"):
        load_summarization("gigaword", "test", data_dir=tmp_path)
    (tmp_path / "test.jsonl").write_text(json.dumps({"text": "a", "headline": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"missing field\(s\) \['document', 'summary'\]"):
        load_summarization("gigaword", "test", data_dir=tmp_path)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        load_summarization("xsum", "test")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_summarization("gigaword", "dev", data_dir=FIXTURES / "gigaword")


# ---- the experiment config: decoding recipes and validation messages ------------------------------------

BASE = {
    "dataset": "cnn_dailymail",
    "method": "r3f",
    "model_name": "tiny-bart",
    "learning_rate": 1e-3,
    "max_updates": 4,
    "warmup_updates": 1,
    "data_dir": "fixtures",
    "output_dir": "unused",
    # None: the dataset's decoding recipe (the class's defaults are the notebook's smoke-sized ones)
    "num_beams": None,
    "min_length": None,
    "max_length": None,
}


def test_decoding_recipe_fills_none() -> None:
    cfg = resolve_summarization_config(**BASE)
    assert (
        cfg.decoding()
        == DECODING["cnn_dailymail"]
        == {"num_beams": 4, "length_penalty": 2.0, "min_length": 55, "max_length": 140, "no_repeat_ngram_size": 3}
    )
    kwargs = generation_kwargs(cfg)
    # fairseq counts generated tokens without the final EOS: min 55 -> min_new_tokens 55, max 140 -> 141
    assert (kwargs["min_new_tokens"], kwargs["max_new_tokens"], kwargs["num_beams"]) == (55, 141, 4)
    cfg = resolve_summarization_config(**{**BASE, "dataset": "gigaword", "num_beams": 2})
    assert cfg.decoding()["num_beams"] == 2 and cfg.decoding()["max_length"] == DECODING["gigaword"]["max_length"]
    assert Path(cfg.data_dir).name == "summarization" and cfg.dataset_dir.endswith("gigaword")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"method": "r4f"}, r"method='r4f' is invalid: choose one of \['standard', 'r3f'\]"),
        ({"dataset": "xsum"}, "dataset='xsum' is invalid"),
        ({"learning_rate": "1e-5"}, "learning_rate='1e-5' is invalid: a positive number"),
        ({"warmup_updates": 9}, r"warmup_updates=9 is invalid: an integer in \[0, max_updates=4\]"),
        ({"min_length": 50, "max_length": 10}, "min_length=50 is invalid: at most max_length=10"),
        ({"fp16": True, "bf16": True}, "fp16 and bf16 exclude each other"),
        ({"profile": "paper"}, "the paper profile needs a pretrained model"),
        ({"profile": "paper", "model_name": "facebook/bart-large"}, "the paper profile needs the real data"),
        ({"noise_type": "gaussian"}, "noise_type='gaussian' is invalid"),
    ],
)
def test_config_errors_name_the_parameter(override: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_summarization_config(**{**BASE, **override})


def test_unknown_parameter_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"unknown summarization parameter\(s\) \['beam_size'\]"):
        resolve_summarization_config(**BASE, beam_size=4)
