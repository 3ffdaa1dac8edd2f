"""Local files and the Hub through one loader; offline without local files fails fast and says how to fix it."""

from __future__ import annotations

import json
import time

import pytest

from r3f_utils.data import DatasetUnavailableError, load_split
from r3f_utils.models import MINILM, load_model_and_tokenizer


def test_local_jsonl_and_csv_load_through_datasets(tmp_path) -> None:
    rows = [json.dumps({"sentence": f"s{i}", "label": i % 2}) for i in range(5)]
    (tmp_path / "train.jsonl").write_text("\n".join(rows))
    (tmp_path / "validation.csv").write_text("sentence,label\na,0\nb,1\n")
    train = load_split("nyu-mll/glue", "sst2", "train", data_dir=tmp_path)
    assert train.num_rows == 5 and train.column_names == ["sentence", "label"]
    assert load_split("nyu-mll/glue", "sst2", "validation", data_dir=tmp_path)["label"] == [0, 1]


def test_local_parquet_loads(tmp_path) -> None:
    import datasets

    datasets.Dataset.from_dict({"document": ["a b c"], "summary": ["a"]}).to_parquet(str(tmp_path / "test.parquet"))
    assert load_split("Harvard/gigaword", None, "test", data_dir=tmp_path)["summary"] == ["a"]


def test_missing_local_split_names_the_file_and_both_fixes(tmp_path) -> None:
    message = r"no test\.jsonl, test\.json, test\.csv or test\.parquet in .*go online"
    with pytest.raises(DatasetUnavailableError, match=message):
        load_split("nyu-mll/glue", "sst2", "test", data_dir=tmp_path)


def test_offline_without_local_files_fails_fast(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailableError, match=r"abisee/cnn_dailymail \(3\.0\.0\).*data_dir=.*HF_HUB_OFFLINE"):
        load_split("abisee/cnn_dailymail", "3.0.0", "test")
    assert time.perf_counter() - start < 5  # no Hub retries


def test_minilm_loads_offline_with_a_fresh_head() -> None:
    model, tokenizer = load_model_and_tokenizer(MINILM, head="classification", num_labels=3)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model(**tokenizer(["a real sentence"], return_tensors="pt")).logits.shape == (1, 3)


def test_model_resolution_errors() -> None:
    with pytest.raises(ValueError, match="tiny-bart is a seq2seq model, but a classification model"):
        load_model_and_tokenizer("tiny-bart", head="classification", num_labels=2)
    with pytest.raises(ValueError, match="pass num_labels"):
        load_model_and_tokenizer("tiny-roberta", head="classification")
    with pytest.raises(ValueError, match="unknown tiny model"):
        from r3f_utils.tiny_models import build_tiny_model

        build_tiny_model("tiny-gpt", num_labels=2)
