"""GLUE/XNLI loaders: task table, local files through the Hub code path, fixtures, offline errors, and the
run-configuration validation of the experiments module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r3f_utils.data import DatasetUnavailableError
from r3f_utils.data.glue import GLUE_TASKS, get_glue_task, load_glue
from r3f_utils.data.xnli import XNLI_LANGUAGES, check_languages, load_xnli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_task_table_matches_glue_definitions() -> None:
    assert set(GLUE_TASKS) == {"mnli", "qqp", "rte", "qnli", "mrpc", "cola", "sst2", "stsb"}
    assert get_glue_task("MNLI").metric_names() == ["accuracy_matched", "accuracy_mismatched"]
    assert get_glue_task("qqp").metric_names() == ["accuracy", "f1"]
    assert get_glue_task("mrpc").metric_names() == ["accuracy", "f1"]
    assert get_glue_task("cola").best_metric == "mcc"
    stsb = get_glue_task("sts-b")
    assert stsb.is_regression and stsb.num_labels == 1 and stsb.metric_names() == ["pearson", "spearman"]
    assert get_glue_task("mnli").num_labels == 3 and get_glue_task("mnli").selection_split == "validation_matched"
    assert not any(t.is_regression for n, t in GLUE_TASKS.items() if n != "stsb")
    with pytest.raises(ValueError, match="choose one of"):
        get_glue_task("wnli")


@pytest.mark.parametrize("task", sorted(GLUE_TASKS))
def test_fixtures_load_in_the_hub_layout(task: str) -> None:
    data = load_glue(task, data_dir=FIXTURES / "glue")
    spec = GLUE_TASKS[task]
    assert len(data.train) >= 24
    assert list(data.dev) == [s for s, _ in spec.dev_splits]
    for ds in (data.train, *data.dev.values()):
        assert {*spec.text_keys, "label"} <= set(ds.column_names)
        labels = ds["label"]
        if spec.is_regression:
            assert all(isinstance(x, float) for x in labels) and 0 <= min(labels) <= max(labels) <= 5
        else:
            assert set(labels) == set(range(spec.num_labels))  # every class present in every split
    assert data.texts() and all(isinstance(t, str) for t in data.texts())


def test_data_dir_may_be_the_task_folder_and_samples_are_capped() -> None:
    data = load_glue("rte", data_dir=FIXTURES / "glue" / "rte", max_train_samples=5, max_eval_samples=3)
    assert len(data.train) == 5 and len(data.dev[""]) == 3


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_local_csv_and_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.csv").write_text("sentence,label,idx\ngood film,1,0\nbad film,0,1\n")
    _write(tmp_path / "sst2" / "validation.jsonl", [{"sentence": "ok", "label": 1, "idx": 0}])
    assert load_glue("sst2", data_dir=tmp_path).train["sentence"] == ["good film", "bad film"]
    _write(tmp_path / "cola" / "train.jsonl", [{"text": "x", "label": 0}])
    _write(tmp_path / "cola" / "validation.jsonl", [{"text": "x", "label": 0}])
    with pytest.raises(ValueError, match=r"fields \['sentence'\] are missing"):
        load_glue("cola", data_dir=tmp_path)
    _write(tmp_path / "rte" / "train.jsonl", [{"sentence1": "a", "sentence2": "b", "label": -1}])
    _write(tmp_path / "rte" / "validation.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 0}])
    with pytest.raises(ValueError, match="test splits carry label -1"):
        load_glue("rte", data_dir=tmp_path)


def test_missing_local_split_names_both_fixes(tmp_path: Path) -> None:
    _write(tmp_path / "mnli" / "train.jsonl", [{"premise": "a", "hypothesis": "b", "label": 0}])
    with pytest.raises(DatasetUnavailableError, match="validation_matched") as err:
        load_glue("mnli", data_dir=tmp_path)
    assert "data_dir" in str(err.value) and "HF_HUB_OFFLINE" in str(err.value)


def test_offline_without_data_dir_fails_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match=r"nyu-mll/glue.*not available offline"):
        load_glue("qnli")
    with pytest.raises(DatasetUnavailableError, match="facebook/xnli"):
        load_xnli(["en"])


def test_xnli_fixtures_and_language_checks() -> None:
    data = load_xnli(["zh", "en", "fr"], data_dir=FIXTURES / "xnli", max_eval_samples=10)
    assert list(data.test) == ["en", "fr", "zh"]  # Table 3's order
    assert len(data.dev) == 10 and all(len(d) == 10 for d in data.test.values())
    assert set(data.train["label"]) == {0, 1, 2}
    assert any("男人" in t for t in data.texts())  # the tiny tokenizer sees every script
    assert len(XNLI_LANGUAGES) == 15
    with pytest.raises(ValueError, match="unknown XNLI language"):
        check_languages(["en", "xx"])
    with pytest.raises(ValueError, match="list of codes"):
        check_languages("en")


def test_run_config_validation_names_the_parameter() -> None:
    from r3f_utils.experiments.glue import resolve_glue_config
    from r3f_utils.experiments.xnli import resolve_xnli_config

    base = {"task": "rte", "method": "std++", "model_name": "tiny-roberta", "learning_rate": 1e-3,
            "max_updates": 10, "batch_size": 8, "data_dir": "fixtures"}
    cfg = resolve_glue_config(**base)
    assert cfg.total_updates == 20 and cfg.r3f_config() is None  # std++: twice the updates, no R3F
    assert Path(cfg.data_dir).name == "glue"
    assert resolve_glue_config(**{**base, "method": "standard"}).total_updates == 10
    with pytest.raises(ValueError, match=r"method='sam'.*choose one of"):
        resolve_glue_config(**{**base, "method": "sam"})
    with pytest.raises(ValueError, match=r"learning_rate='1e-5' is invalid: a positive number \(a string is not"):
        resolve_glue_config(**{**base, "learning_rate": "1e-5"})
    with pytest.raises(TypeError, match="lamda"):
        resolve_glue_config(**{**base, "lamda": 0.7})
    with pytest.raises(ValueError, match="paper profile needs a pretrained model"):
        resolve_glue_config(**{**base, "profile": "paper"})
    with pytest.raises(ValueError, match="method='std\\+\\+'"):
        resolve_xnli_config(**{k: v for k, v in base.items() if k != "task"})


def test_smart_and_freelb_parameters_reach_their_configs_and_bad_ones_are_named() -> None:
    from r3f_utils import FreeLBConfig, SMARTConfig
    from r3f_utils.experiments.glue import resolve_glue_config

    base = {"task": "rte", "model_name": "tiny-roberta", "learning_rate": 1e-3, "max_updates": 10,
            "batch_size": 8, "data_dir": "fixtures"}
    smart = resolve_glue_config(**base, method="smart", smart_ascent_steps=2, smart_ascent_rule="mtdnn").smart_config()
    assert smart == SMARTConfig(ascent_steps=2, ascent_rule="mtdnn")
    freelb = resolve_glue_config(**base, method="freelb", freelb_ascent_steps=3, freelb_max_norm=None).freelb_config()
    assert freelb == FreeLBConfig(ascent_steps=3, max_norm=None)
    assert resolve_glue_config(**base, method="r3f").smart_config() is None
    with pytest.raises(ValueError, match=r"parameter smart_ascent_steps=0 is invalid: SMARTConfig\.ascent_steps"):
        resolve_glue_config(**base, method="smart", smart_ascent_steps=0)
    with pytest.raises(ValueError, match=r"parameter freelb_norm='l1' is invalid: FreeLBConfig\.norm"):
        resolve_glue_config(**base, method="freelb", freelb_norm="l1")
    with pytest.raises(ValueError, match=r"parameter freelb_adv_lr=-0\.1 is invalid: FreeLBConfig\.adv_lr"):
        resolve_glue_config(**base, method="freelb", freelb_adv_lr=-0.1)
