"""Each family's parameter values per profile live in one place (``Family.profiles``, r3f_utils/families.py);
a registry row lists only its own values, and no ``null`` is left in the registry's parameter sections."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from r3f_utils.families import FAMILIES
from r3f_utils.params import PROFILES, resolve
from r3f_utils.registry import DEFAULT_REGISTRY, RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rows():
    return {r.id: r for r in load_registry(check_notebooks=False)}


def test_no_null_left_in_the_registry_parameter_sections(rows) -> None:
    for row in rows.values():
        sections = {"parameters": row.parameters, "smoke.parameters": row.smoke.parameters}
        if row.cpu is not None:
            sections["cpu.parameters"] = row.cpu.parameters
        for where, params in sections.items():
            assert None not in params.values(), (row.id, where, params)
    text = Path(DEFAULT_REGISTRY).read_text(encoding="utf-8")
    for name in ("glue_paper", "glue_roberta", "freelb_paper", "glue_smoke", "glue_cpu", "xnli_paper", "xnli_smoke",
                 "summarization_smoke", "probing_paper", "probing_smoke", "probing_cpu", "fig1_paper", "sft_gpu",
                 "sft_smoke_params"):
        assert f"&{name}" not in text, f"the per-profile template {name} is back in the registry"


def test_each_familys_profile_values_are_valid_and_smoke_is_the_class_defaults() -> None:
    for family in FAMILIES.values():
        fields = family.params.model_fields
        values = family.profiles
        for profile in PROFILES:
            own = dict(getattr(values, profile))
            assert set(own) <= set(fields), (family.name, profile, set(own) - set(fields))
            resolve(family.params, {**own, "profile": profile})  # each value passes the class's checks
        assert set(values.scaled) <= set(fields), (family.name, set(values.scaled) - set(fields))
        # smoke is the notebook's defaults; only Table 1's pass counting times one step of a smaller batch there
        assert dict(values.smoke) == ({"batch_size": 4, "max_length": 32, "timing_steps": 1}
                                      if family.name == "compute_cost" else {}), family.name
    glue = FAMILIES["glue"].profiles.paper
    assert (glue["head_dropout"], glue["weight_decay_scope"], glue["model_name"]) == (
        0.0, "all", "FacebookAI/roberta-large")  # fairseq pooler_dropout, fairseq Adam, the paper's model


def test_resolved_parameters_of_representative_rows(rows) -> None:
    rte_r3f = rows["table2a.rte.roberta_large_r3f"]
    assert rte_r3f.parameters_for("smoke") == {"task": "rte", "method": "r3f", "eps": 1e-5, "r3f_lambda": 0.7,
                                               "noise_type": "uniform"}
    assert rte_r3f.parameters_for("paper") == {
        "head_dropout": 0.0, "weight_decay_scope": "all", "model_name": "FacebookAI/roberta-large",
        "warmup_ratio": 0.06, "weight_decay": 0.01, "adam_beta1": 0.9, "adam_beta2": 0.98, "adam_epsilon": 1e-6,
        "dropout": 0.1, "data_dir": None, "max_length": 512, "bf16": True, "task": "rte", "method": "r3f",
        "learning_rate": 1e-5, "max_updates": 3120, "batch_size": 8, "eps": 1e-5, "r3f_lambda": 0.7,
        "noise_type": "uniform"}
    # the RoBERTa recipe row keeps its own weight decay and warmup in every profile, not its paper scale
    std = rows["table2a.rte.roberta_large_std"]
    assert std.parameters_for("smoke") == {"task": "rte", "method": "standard", "warmup_ratio": 0.0599,
                                           "weight_decay": 0.1}
    assert {k: std.parameters_for("paper")[k] for k in ("weight_decay", "learning_rate", "max_updates")} == {
        "weight_decay": 0.1, "learning_rate": 2e-5, "max_updates": 2036}
    # FreeLB: the published Adam/decay everywhere, the perturbation scaled to the tiny model in smoke only
    freelb = rows["table2a.rte.roberta_large_freelb"]
    smoke = freelb.parameters_for("smoke")
    assert {k: smoke[k] for k in ("weight_decay", "adam_beta2", "freelb_init_mag", "freelb_max_norm")} == {
        "weight_decay": 0.1, "adam_beta2": 0.999, "freelb_init_mag": 0.01, "freelb_max_norm": 0.01}
    assert freelb.parameters_for("paper")["freelb_init_mag"] == 0.16
    # cpu: MiniLM on the fixtures, from the family's cpu values
    sst2 = next(r for r in rows.values() if r.cpu is not None and r.notebook == "notebooks/glue.ipynb")
    cpu = sst2.parameters_for("cpu")
    assert {k: cpu[k] for k in ("model_name", "max_updates", "batch_size", "learning_rate", "max_length")} == {
        "model_name": "minilm", "max_updates": 10, "batch_size": 8, "learning_rate": 1e-4, "max_length": 64}
    assert "head_dropout" not in cpu and "bf16" not in cpu
    # Gigaword's deliberate smoke override; the BART recipe's shared values are the family's paper values
    giga = rows["table4.gigaword.bart_r3f"]
    assert giga.parameters_for("smoke") == {"dataset": "gigaword", "method": "r3f", "length_penalty": 1.0,
                                            "no_repeat_ngram_size": 3, "eps": 1e-5, "r3f_lambda": 1.0,
                                            "noise_type": "normal", "learning_rate": 3e-3, "max_updates": 200}
    paper = giga.parameters_for("paper")
    assert (paper["model_name"], paper["num_beams"], paper["max_updates"], paper["data_dir"]) == (
        "facebook/bart-large", 4, 13146, None)
    # probing: the paper's per-stage None (the task's value of the reference GLUE table), cpu on MiniLM
    fig3 = rows["fig3.r4f"]
    assert {k: fig3.parameters_for("paper")[k] for k in ("learning_rate", "max_updates", "probe_standardize")} == {
        "learning_rate": None, "max_updates": None, "probe_standardize": True}
    assert fig3.parameters_for("cpu")["model_name"] == "minilm"
    # Table 1: the family's smoke batch; Figure 1's FreeLB: its own recipe in paper, the shared one in cpu
    assert rows["table1.freelb"].parameters_for("smoke") == {"batch_size": 4, "max_length": 32, "timing_steps": 1,
                                                             "method": "freelb", "ascent_steps": 1}
    fig1 = rows["fig1.sst2.freelb"]
    assert (fig1.parameters_for("paper")["adam_beta2"], fig1.parameters_for("cpu")["adam_beta2"]) == (0.999, 0.98)
    assert rows["sft.full.r3f"].parameters_for("smoke") == {"dataset": "alpaca_cleaned", "method": "r3f",
                                                            "finetuning": "full", "learning_rate": 3e-3}


def test_a_null_in_a_profile_section_is_refused(tmp_path) -> None:
    text = Path(DEFAULT_REGISTRY).read_text(encoding="utf-8")
    old = "    parameters: {learning_rate: 3.0e-3, max_updates: 200}\n"  # the gigaword_smoke anchor
    assert old in text
    path = tmp_path / "registry.yaml"
    path.write_text(text.replace(old, "    parameters: {learning_rate: 3.0e-3, max_updates: 200, model_name: null}\n"),
                    encoding="utf-8")
    with pytest.raises(RegistryError) as err:
        load_registry(path, check_notebooks=False)
    message = str(err.value)
    assert ("row 'table4.gigaword.bart': field 'smoke.parameters.model_name': null no longer drops a "
            "parameter: delete the key; the smoke profile's value comes from the family's profile values "
            "(r3f_utils/families.py, ProfileDefaults), else the notebook's default") in message


def test_the_dump_script_compares_effective_values(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dump_resolved_parameters as dump
    finally:
        sys.path.pop(0)
    data = dump.dump()
    assert len(data["paper"]) == len(data["smoke"]) > 100 and data["cpu"]
    assert dump.compare(data, data, {}) == []
    changed = json.loads(json.dumps(data))
    changed["smoke"]["table2a.rte.roberta_large_r3f"]["effective"]["max_updates"] = 7
    assert dump.compare(data, changed, {}) == ["smoke table2a.rte.roberta_large_r3f: max_updates 120 -> 7"]
    renamed = json.loads(json.dumps(data))
    for entry in (e for rows_ in renamed.values() for e in rows_.values()):
        entry["effective"] = {("lr" if k == "learning_rate" else k): v for k, v in entry["effective"].items()}
    assert dump.compare(data, renamed, {"learning_rate": "lr"}) == []
