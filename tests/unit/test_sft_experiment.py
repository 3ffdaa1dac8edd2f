"""The sft family's steps (r3f_utils/experiments/sft.py): configuration refusals, the Hub loading code on the
local fixtures, TRL-identical held-out tokenization, token F1, the recipe description and one run through
``python -m r3f_utils train sft``'s code path."""

from __future__ import annotations

import json
import math

import pytest

from r3f_utils.experiments import sft as exp
from r3f_utils.package_data import fixtures_dir

SMOKE = dict(dataset="alpaca_cleaned", method="r3f", finetuning="lora", model_name="tiny-llama", learning_rate=1e-2,
             max_updates=2, data_dir="fixtures", max_length=96, lora_r=4, lora_alpha=8, generation_samples=2,
             max_new_tokens=4)


def test_bad_configurations_are_refused_by_name(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"R4F is not defined for tiny-llama.*no classification head|classification"):
        exp.resolve_sft_config(**{**SMOKE, "method": "r4f", "output_dir": str(tmp_path)})
    with pytest.raises(TypeError, match=r"unknown sft parameter\(s\) \['noise'\]"):
        exp.resolve_sft_config(**SMOKE, noise="uniform")
    with pytest.raises(ValueError, match="parameter finetuning='qlora' is invalid"):
        exp.resolve_sft_config(**{**SMOKE, "finetuning": "qlora"})
    with pytest.raises(ValueError, match="paper profile needs a pretrained model"):
        exp.resolve_sft_config(**{**SMOKE, "profile": "paper"})
    with pytest.raises(ValueError, match=r"parameter eps='1e-5' is invalid: a positive number \(a string is not"):
        exp.resolve_sft_config(**{**SMOKE, "eps": "1e-5"})
    with pytest.raises(ValueError, match="generation_samples=9 is invalid: at most test_size=8"):
        exp.resolve_sft_config(**{**SMOKE, "generation_samples": 9})


def test_methods_map_to_the_trainer_options(tmp_path) -> None:
    configs = {m: exp.resolve_sft_config(**{**SMOKE, "method": m, "output_dir": str(tmp_path)}).r3f_config()
               for m in exp.SFT_METHODS}
    assert configs["standard"] is None and configs["neftune"] is None
    assert (configs["r3f"].noise_type, configs["r3f"].eps) == ("uniform", 1e-5)
    assert (configs["r3f_neftune"].noise_type, configs["r3f_neftune"].neftune_alpha,
            configs["r3f_neftune"].neftune_length) == ("neftune", 5.0, "padded")


@pytest.mark.parametrize("dataset", ["alpaca_cleaned", "dolly"])
def test_both_field_layouts_load_through_the_hub_code_path(dataset, tmp_path) -> None:
    cfg = exp.resolve_sft_config(**{**SMOKE, "dataset": dataset, "output_dir": str(tmp_path)})
    assert cfg.data_source == str(fixtures_dir("sft") / dataset)  # the folder takes the Hub id's place
    data = exp.load_sft_data(cfg)
    total = {"alpaca_cleaned": 64, "dolly": 32}[dataset]
    assert data.sizes() == {"train": total - 16, "validation": 8, "test": 8}
    prompts = set(data.train["prompt"]) | set(data.validation["prompt"])
    assert all(p.startswith("Below is an instruction") and p.endswith("### Response:\n") for p in prompts)
    assert any("### Input:" in p for p in data.train["prompt"])  # input / context becomes the Input section
    again = exp.load_sft_data(cfg)
    assert again.test["prompt"] == data.test["prompt"]  # the held-out cut is seeded


def test_a_folder_with_other_fields_is_named(tmp_path) -> None:
    (tmp_path / "dolly").mkdir()
    (tmp_path / "dolly" / "train.jsonl").write_text("".join(json.dumps({"question": "q", "answer": "a"}) + "\n"
                                                           for _ in range(20)))
    cfg = exp.resolve_sft_config(**{**SMOKE, "dataset": "dolly", "data_dir": str(tmp_path),
                                    "output_dir": str(tmp_path / "run")})
    with pytest.raises(ValueError, match=r"no field\(s\) \['instruction', 'response'\]"):
        exp.load_sft_data(cfg)


def test_token_f1() -> None:
    assert exp.token_f1("Apple bread stone", "apple bread stone") == 100.0
    assert exp.token_f1("", "") == 100.0 and exp.token_f1("x", "") == 0.0
    assert exp.token_f1("the cat", "the dog") == pytest.approx(50.0)


def test_heldout_tokenization_is_trls_and_a_run_records_its_metrics(tmp_path) -> None:
    from r3f_utils.train import run_training

    cfg = exp.resolve_sft_config(**{**SMOKE, "output_dir": str(tmp_path / "steps")})
    data = exp.load_sft_data(cfg)
    model, tok = exp.build_sft_model(cfg, data.texts())
    assert (tmp_path / "steps" / "checkpoints" / "initial-model" / "config.json").is_file()  # from_pretrained
    trainer = exp.build_sft_trainer(cfg, model, tok, data)
    processed = trainer.train_dataset
    for i in range(4):
        ids, labels = exp._completion_example(tok, data.train[i]["prompt"], data.train[i]["completion"], 96)
        mask = processed[i]["completion_mask"] if "completion_mask" in processed.column_names else None
        trl_labels = processed[i]["labels"] if "labels" in processed.column_names else [
            t if m else -100 for t, m in zip(processed[i]["input_ids"], mask, strict=True)]
        assert processed[i]["input_ids"] == ids and trl_labels == labels

    metrics = run_training("sft", {**SMOKE, "output_dir": str(tmp_path / "run"), "seed": 1, "profile": "smoke",
                                   "experiment": "sft-test"})
    assert set(metrics) == {"eval_loss", "perplexity", "token_f1"}
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["extra"]["train"]["global_step"] == 2 and record["extra"]["train"]["mean_symm_kl"] > 0
    assert not (tmp_path / "run" / "checkpoints").exists()  # the initial tiny model with them


def test_the_gpu_rows_describe_their_downloads_and_cost() -> None:
    from r3f_utils.describe import describe_row
    from r3f_utils.registry import load_registry

    rows = [r for r in load_registry(check_notebooks=False) if r.id.startswith("sft.")]
    assert len(rows) == 8 and {r.table for r in rows} == {"sft (beyond the paper)"}
    for row in rows:
        desc = describe_row(row, "paper")
        assert not desc.problems and [str(d) for d in desc.downloads] == ["yahma/alpaca-cleaned:train"]
        assert desc.updates == 1500 and 0.9 < desc.epochs < 1.0 and desc.gpu_hours > 0
        assert all(v is None for v in row.metrics.values()) and row.smoke.expected
