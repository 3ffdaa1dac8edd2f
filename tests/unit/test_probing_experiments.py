"""The probing studies (r3f_utils.experiments.probing): configuration, the paper's stage plans, the registry rows
that feed them, and a chain that resumes after an interruption with the previous stage's encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r3f_utils.experiments import probing
from r3f_utils.experiments.glue import GLUE_METHODS, PAPER_GLUE_HPARAMS
from r3f_utils.registry import METRIC_NAMES, load_registry

SMOKE = {"method": "r4f", "model_name": "tiny-roberta", "learning_rate": 1e-3, "max_updates": 8, "eval_steps": 8,
         "batch_size": 8, "data_dir": "fixtures", "max_length": 64, "seed": 1, "profile": "smoke", "experiment": "test"}


def _cfg(tmp_path: Path, study: str = "degradation", **kw):
    return probing.resolve_probing_config(**{**SMOKE, "study": study, "output_dir": str(tmp_path), **kw})


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"study": "collapse"}, ValueError, "study='collapse'.*generalization"),
    ({"experiment": "retention"}, ValueError, "experiment='retention'.*write study='retention'"),  # schema 2's name
    ({"probe_lr": 1e-3}, TypeError, "probe_lr"),
    ({"study": "generalization", "probe_tasks": ["sst2", "rte"]}, ValueError, "probe_tasks.*source_task"),
    ({"chain": ["sst2", "rte", "sst2"]}, ValueError, "chain.*only once"),
    ({"chain": ["sst2"]}, ValueError, "chain.*at least two"),
    ({"cycles": 0}, ValueError, "cycles=0"),
    ({"probe_tasks": "rte", "study": "generalization"}, ValueError, "probe_tasks='rte'"),
    ({"probe_head": "mlp"}, ValueError, "head='mlp'"),
    ({"method": "sgd"}, ValueError, "method='sgd'"),
    ({"learning_rate": -1.0}, ValueError, "learning_rate"),
])
def test_resolve_rejects_bad_parameters_naming_them(tmp_path, params, error, match):
    with pytest.raises(error, match=match):
        _cfg(tmp_path, **params)


def test_methods_come_from_the_glue_recipe(tmp_path):
    for method in GLUE_METHODS:
        assert _cfg(tmp_path, method=method).method == method


def test_paper_stage_plans(tmp_path):
    gen = probing.plan_stages(_cfg(tmp_path, "generalization"))
    assert [(s.task, [p for p, _ in s.probes]) for s in gen] == [
        ("sst2", ["mnli", "qqp", "rte", "qnli", "mrpc", "cola"])]
    deg = probing.plan_stages(_cfg(tmp_path, "degradation"))
    assert [s.task for s in deg] == ["sst2", "qnli", "qqp", "rte"] and {p for s in deg for p, _ in s.probes} == {"sst2"}
    ret = probing.plan_stages(_cfg(tmp_path, "retention"))
    assert len(ret) == 12 and [s.cycle for s in ret] == [1] * 4 + [2] * 4 + [3] * 4
    # after training on a task, the next task of the cycle is probed (before it is trained on)
    assert [(s.task, s.probes[0][0]) for s in ret[:4]] == [
        ("sst2", "qnli"), ("qnli", "qqp"), ("qqp", "rte"), ("rte", "sst2")]
    for stages in (gen, deg, ret):
        assert all(name in METRIC_NAMES for s in stages for _, name in s.probes)
    # the figures' x labels (results.json extra.probe_order)
    assert [label for _, label in probing._probe_order(gen)] == ["mnli", "qqp", "rte", "qnli", "mrpc", "cola"]
    assert [label for _, label in probing._probe_order(deg)][-1] == "after rte"
    assert [label for _, label in probing._probe_order(ret)][:2] == ["c1 sst2→qnli", "c1 qnli→qqp"]


def test_stage_config_takes_the_tasks_reference_recipe_when_left_none(tmp_path):
    cfg = _cfg(tmp_path, learning_rate=None, max_updates=None, batch_size=None)
    run = probing.stage_config(cfg, "qqp", 3)
    paper = PAPER_GLUE_HPARAMS["qqp"]
    assert (run.learning_rate, run.max_updates, run.batch_size) == (
        paper["learning_rate"], paper["max_updates"], paper["batch_size"])
    assert run.method == "r4f" and run.seed == 1 and Path(run.output_dir) == tmp_path / "stages" / "03-qqp"
    with pytest.raises(ValueError, match="learning_rate=None"):
        probing.stage_config(cfg, "stsb", 1)


@pytest.fixture(scope="module")
def registry_rows():
    return load_registry(check_notebooks=False)


@pytest.mark.parametrize("study", probing.STUDIES)
def test_registry_rows_register_every_metric_the_study_writes(tmp_path, registry_rows, study):
    table = {"generalization": "fig3", "degradation": "fig4", "retention": "fig5"}[study]
    rows = [r for r in registry_rows if r.table == table]
    variants = [r for r in rows if r.id.endswith("_mtdnn")]  # SMART, mt-dnn release (no Bregman term)
    assert all(r.parameters["method"] == "smart" and r.parameters["smart_bregman_mu"] == 0.0 for r in variants)
    assert sorted(r.parameters["method"] for r in rows if r not in variants) == sorted(GLUE_METHODS), \
        f"{table}: one row per GLUE method (add rows for new methods of r3f_utils.experiments.glue.GLUE_METHODS)"
    plan = probing.plan_stages(_cfg(tmp_path, study))
    written = {name for s in plan for _, name in s.probes}
    written |= {"probe_final", "probe_drop"} if study == "degradation" else {"probe_mean"}
    for row in rows:
        assert set(row.metrics) == written and all(v is None for v in row.metrics.values())
        assert row.parameters["study"] == study and row.notebook == "notebooks/probing.ipynb"


class _Interrupt(Exception):
    pass


def _stop(_: str) -> None:
    raise _Interrupt


def _measured(outcome: probing.StudyOutcome) -> list[tuple]:
    return [(s["task"], s["dev"], {n: {k: v for k, v in p.items() if k != "seconds"} for n, p in s["probes"].items()})
            for s in outcome.stages]


def test_chain_resumes_after_an_interruption_from_the_saved_encoder(tmp_path):
    """An interrupted chain resumes after its last finished stage, from that stage's saved encoder: the result
    equals the uninterrupted run's, and a corrupted saved encoder changes it (the encoder really is carried)."""
    import shutil

    from safetensors.torch import load_file, save_file

    chain = {"chain": ["sst2", "rte"]}
    whole = probing.run_study(_cfg(tmp_path / "whole", **chain), log=lambda _: None)
    assert [s["task"] for s in whole.stages] == ["sst2", "rte"]
    assert set(whole.metrics) == {"probe_after_sst2", "probe_after_rte", "probe_final", "probe_drop"}
    assert whole.metrics["probe_drop"] == whole.metrics["probe_after_sst2"] - whole.metrics["probe_after_rte"]

    cfg = _cfg(tmp_path / "cut", **chain)
    with pytest.raises(_Interrupt):
        probing.run_study(cfg, log=_stop)  # stage 1 finished, stage 2 never started
    first = tmp_path / "cut" / "stages" / "01-sst2"
    assert (first / "stage.json").is_file() and (first / "encoder.safetensors").is_file()
    assert not (tmp_path / "cut" / "stages" / "02-rte").exists()
    shutil.copytree(tmp_path / "cut", tmp_path / "bad")
    messages: list[str] = []
    resumed = probing.run_study(cfg, log=messages.append)
    assert "resumed" in messages[0]
    assert resumed.metrics == whole.metrics and _measured(resumed) == _measured(whole)
    assert not (first / "encoder.safetensors").exists()  # the previous stage's encoder is dropped once used
    assert json.loads((tmp_path / "cut" / "stages" / "02-rte" / "stage.json").read_text())["task"] == "rte"

    path = tmp_path / "bad" / "stages" / "01-sst2" / "encoder.safetensors"
    save_file({k: v.flip(0).contiguous() if v.ndim else v for k, v in load_file(str(path)).items()}, str(path))
    bad = probing.run_study(probing.resolve_probing_config(**{**SMOKE, "study": "degradation", **chain,
                                                              "output_dir": str(tmp_path / "bad")}),
                            log=lambda _: None)
    assert _measured(bad)[0] == _measured(whole)[0] and _measured(bad)[1] != _measured(whole)[1]


def test_paper_profile_lists_every_glue_download_of_a_probing_row(registry_rows):
    from r3f_utils.describe import describe_row

    for row in registry_rows:
        if row.table not in ("fig3", "fig4", "fig5"):
            continue
        desc = describe_row(row)
        assert desc.problems == [], (row.id, desc.problems)
        tasks = {d.config for d in desc.downloads}
        assert tasks == ({"sst2", "mnli", "qqp", "rte", "qnli", "mrpc", "cola"} if row.table == "fig3"
                         else {"sst2", "qnli", "qqp", "rte"}), row.id
