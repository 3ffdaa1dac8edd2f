"""``python -m r3f_utils train``: parameters from the notebook's defaults, a registry row, a YAML/JSON file and
--set, in that order; every family's notebook defaults make a valid run configuration. (The run itself, under
torchrun with 2 processes, is tested in test_ddp.py.)"""

from __future__ import annotations

import json

import pytest

from r3f_utils.cli import main
from r3f_utils.families import get_family
from r3f_utils.train import FAMILIES, TrainError, resolve_parameters


def test_notebook_defaults_then_file_then_set(tmp_path) -> None:
    family, params = resolve_parameters("glue")
    assert family == "glue" and (params["task"], params["method"], params["profile"]) == ("rte", "r3f", "smoke")
    (tmp_path / "p.json").write_text(json.dumps({"task": "mrpc", "learning_rate": 2.0e-3}))
    _, params = resolve_parameters("glue", params_file=tmp_path / "p.json", overrides=["learning_rate=1e-5"])
    assert params["task"] == "mrpc" and params["learning_rate"] == 1e-5  # --set wins; 1e-5 read as a number
    (tmp_path / "p.yaml").write_text("method: r4f\nr4f_scope: all\n")
    assert resolve_parameters("glue", params_file=tmp_path / "p.yaml")[1]["r4f_scope"] == "all"


def test_registry_row_gives_family_and_parameters() -> None:
    family, params = resolve_parameters(None, row="table4.cnn_dailymail.bart_r3f", profile="paper")
    assert family == "summarization"
    assert (params["experiment"], params["profile"], params["model_name"]) == (
        "table4.cnn_dailymail.bart_r3f", "paper", "facebook/bart-large")
    family, params = resolve_parameters(None, row="table2a.rte.roberta_large_r3f")  # smoke section merged
    assert family == "glue" and params["experiment"] == "table2.rte.roberta_large_r3f"  # the experiment key


def test_bad_input_is_named(tmp_path) -> None:
    with pytest.raises(TrainError, match="name a family"):
        resolve_parameters(None)
    with pytest.raises(TrainError, match=r"runs notebooks/summarization\.ipynb, not the glue family"):
        resolve_parameters("glue", row="table4.gigaword.bart")
    with pytest.raises(TrainError, match="no target row or experiment"):
        resolve_parameters(None, row="table9.nothing")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(TrainError, match="expected a mapping"):
        resolve_parameters("glue", params_file=tmp_path / "list.yaml")
    assert main(["train", "glue", "--set", "no_equals_sign"]) == 2
    with pytest.raises(TrainError, match=r"smart_lambda was renamed smart_adv_lambda in registry schema 3 "
                                         r"\(docs/registry\.md#migration-from-schema-2\)"):
        resolve_parameters("glue", overrides=["smart_lambda=3"])
    (tmp_path / "old.yaml").write_text("freelb_steps: 3\n")
    with pytest.raises(TrainError, match="freelb_steps was renamed freelb_ascent_steps"):
        resolve_parameters("glue", params_file=tmp_path / "old.yaml")


@pytest.mark.parametrize("family", FAMILIES)
def test_notebook_defaults_resolve_to_a_run_configuration(family, tmp_path) -> None:
    from r3f_utils.experiments import glue, sft, summarization, xnli

    resolve = {"glue": glue.resolve_glue_config, "xnli": xnli.resolve_xnli_config,
               "summarization": summarization.resolve_summarization_config, "sft": sft.resolve_sft_config}[family]
    _, params = resolve_parameters(family, overrides=[f"output_dir={tmp_path}"])
    cfg = resolve(**params)  # the names the script passes are exactly the ones the library takes
    assert cfg.output_dir == str(tmp_path) and get_family(family).run is not None
