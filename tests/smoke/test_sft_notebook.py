"""Execute notebooks/sft.ipynb once with papermill (row sft.lora.r3f_neftune, smoke profile, CPU, offline: LoRA on a
tiny Llama, NEFTune noise + R3F KL) and check its results.json against the registry's pin; plus the notebook's
shape. The other seven sft rows run the same cells with other parameters (``reproduce --rows 'sft.*'`` in the
main job); the steps themselves are tested in tests/unit/test_sft_experiment.py. Budget: one execution, ~5-15 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_checks import check_thin_notebook  # (tests/smoke on sys.path)
from notebook_runs import execute  # warm kernels (pytest puts tests/smoke on sys.path)

from r3f_utils.checker import check
from r3f_utils.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "sft.ipynb"
ROW = "sft.lora.r3f_neftune"
REGISTRY_PARAMETERS = ("dataset", "method", "finetuning", "model_name", "learning_rate", "max_updates", "batch_size",
                       "gradient_accumulation_steps", "max_length", "lora_r", "lora_alpha", "eps", "r3f_lambda",
                       "neftune_alpha", "validation_size", "test_size", "generation_samples", "max_new_tokens")


def test_notebook_is_thin_stripped_and_declares_the_registry_parameters() -> None:
    checked = check_thin_notebook(NOTEBOOK, REGISTRY_PARAMETERS)
    declared = checked["declared"]
    assert declared["model_name"]["default"] == '"tiny-llama"' and declared["profile"]["default"] == '"smoke"'


@pytest.mark.notebooks
def test_one_smoke_execution_matches_its_pin(tmp_path: Path) -> None:
    row = next(r for r in load_registry() if r.id == ROW)
    params = {**row.parameters_for("smoke"), "experiment": row.experiment, "profile": "smoke", "seed": 1}
    record = execute(NOTEBOOK, tmp_path / "run", params)
    assert (record.parameters["method"], record.parameters["finetuning"]) == ("r3f_neftune", "lora")
    assert record.extra["train"]["mean_symm_kl"] > 0  # the KL ran and was logged
    assert record.extra["train"]["trainable_parameters"] < 50_000  # LoRA adapters only
    assert record.extra["samples"] == {"train": 48, "validation": 8, "test": 8}
    result = check([row], [record], "smoke")
    bad = [v for v in result.verdicts if v.verdict != "reproduced"]
    assert not bad, [(v.metric, v.expected, v.reproduced, v.verdict) for v in bad]
