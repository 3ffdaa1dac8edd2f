"""Execute notebooks/summarization.ipynb with papermill for the six Table 4 target rows (smoke profile, CPU,
offline) and check each results.json with the checker against the values pinned in the registry; plus the
notebook's shape and checkpoint resume.

Each execution gets what ``python -m r3f_utils reproduce --rows 'table4.*' --profile smoke`` gives it (the
row's parameters merged with its ``smoke:`` overrides, and ``row``/``profile``/``seed``/``output_dir``).
Time budget (2 CPU cores, two kernels at a time): 7 executions of ~7-9 s (~5 s of it importing
torch/transformers in the kernel), ~35-45 s in total on an idle machine; the resume test ~5 s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from notebook_checks import check_thin_notebook  # (tests/smoke on sys.path)
from notebook_runs import execute_all  # warm kernels (pytest puts tests/smoke on sys.path)

from r3f_utils.checker import check
from r3f_utils.registry import RegistryRow, load_registry
from r3f_utils.results import ResultRecord
from r3f_utils.rouge import ROUGE_TYPES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "summarization.ipynb"
# the parameter names agreed with the registry (each must be declared by the notebook)
REGISTRY_PARAMETERS = (
    "dataset",
    "method",
    "model_name",
    "learning_rate",
    "max_updates",
    "warmup_updates",
    "label_smoothing",
    "max_source_length",
    "max_target_length",
    "eps",
    "r3f_lambda",
    "noise_type",
    "num_beams",
    "length_penalty",
    "min_length",
    "max_length",
    "no_repeat_ngram_size",
)
EXPECTED_ROWS = {f"table4.{d}.{m}" for d in ("cnn_dailymail", "gigaword", "reddit_tifu") for m in ("bart", "bart_r3f")}
REPEAT = "table4.gigaword.bart_r3f"  # run twice: identical metrics (the pins assume determinism)


def table4_rows() -> dict[str, RegistryRow]:
    return {r.id: r for r in load_registry() if r.id.startswith("table4.") and r.role == "target"}


@pytest.fixture(scope="session")
def table4_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ResultRecord | BaseException]:
    """Every Table 4 target row, plus a repeat of one, two kernels at a time (same threads as the runner)."""
    base = tmp_path_factory.mktemp("summarization-notebook")
    rows = table4_rows()
    jobs = {
        rid: {**row.parameters_for("smoke"), "experiment": row.experiment, "profile": "smoke", "seed": 1}
        for rid, row in rows.items()
    }
    jobs[f"{REPEAT}-repeat"] = jobs[REPEAT]

    return execute_all(NOTEBOOK, base, jobs)


def test_notebook_is_thin_stripped_and_declares_the_registry_parameters() -> None:
    checked = check_thin_notebook(NOTEBOOK, REGISTRY_PARAMETERS)
    declared = checked["declared"]
    assert declared["model_name"]["default"] == '"tiny-bart"' and declared["profile"]["default"] == '"smoke"'
    assert len(checked["notebook"].cells) <= 20


def test_the_registry_has_the_six_table4_target_rows() -> None:
    rows = table4_rows()
    assert set(rows) == EXPECTED_ROWS
    for row in rows.values():
        assert row.notebook == "notebooks/summarization.ipynb"
        assert set(REGISTRY_PARAMETERS) - {"eps", "r3f_lambda", "noise_type"} <= set(row.parameters_for("paper"))
        assert row.smoke.expected, f"{row.id}: no smoke expectation pinned"


@pytest.mark.notebooks
@pytest.mark.parametrize("row_id", sorted(EXPECTED_ROWS))
def test_smoke_run_matches_its_pin(row_id: str, table4_runs: dict[str, ResultRecord | BaseException]) -> None:
    record = table4_runs[row_id]
    if isinstance(record, BaseException):
        raise record
    row = table4_rows()[row_id]
    assert set(record.metrics) == set(ROUGE_TYPES)
    assert all(math.isfinite(v) and 0 <= v <= 100 for v in record.metrics.values())
    params = record.parameters
    assert (params["dataset"], params["method"]) == (row.parameters["dataset"], row.parameters["method"])
    assert params["model_name"] == "tiny-bart" and params["profile"] == "smoke"
    # decoding actually used is recorded, e.g. CNN/DM keeps length_penalty 2.0 and no_repeat_ngram 3 in smoke
    for key in ("length_penalty", "no_repeat_ngram_size"):
        assert params[key] == row.parameters[key]
    assert record.extra["samples"]["test"] > 0 and len(record.extra["examples"]) == 3
    if params["method"] == "r3f":
        assert params["noise_type"] == "normal"
    result = check([row], [record], "smoke")
    bad = [v for v in result.verdicts if v.verdict != "reproduced"]
    assert not bad, [(v.metric, v.expected, v.reproduced, v.verdict) for v in bad]


@pytest.mark.notebooks
def test_smoke_runs_are_deterministic(table4_runs: dict[str, ResultRecord | BaseException]) -> None:
    first, again = table4_runs[REPEAT], table4_runs[f"{REPEAT}-repeat"]
    if isinstance(first, BaseException):
        raise first
    if isinstance(again, BaseException):
        raise again
    assert again.metrics == first.metrics


def test_training_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    """An interrupted run (its last checkpoint lost) resumes from the previous one and ends where an
    uninterrupted run ends."""
    from r3f_utils.experiments import summarization as exp

    def run(out: Path) -> dict[str, Any]:
        cfg = exp.resolve_summarization_config(
            dataset="gigaword",
            method="r3f",
            model_name="tiny-bart",
            learning_rate=1e-3,
            max_updates=4,
            warmup_updates=1,
            batch_size=4,
            max_source_length=48,
            max_target_length=16,
            eval_steps=2,
            max_train_samples=16,
            max_eval_samples=4,
            data_dir="fixtures",
            keep_checkpoints=True,
            seed=3,
            output_dir=str(out),
        )
        data = exp.load_summarization_data(cfg)
        model, tokenizer = exp.build_summarization_model(cfg, data.texts())
        trainer = exp.build_summarization_trainer(
            cfg, model, tokenizer, exp.tokenize_summarization(data, tokenizer, cfg)
        )
        return exp.train_with_resume(trainer, cfg)

    full = run(tmp_path / "a")
    assert full["resumed_from"] is None and full["global_step"] == 4
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    import shutil

    shutil.rmtree(tmp_path / "a" / "checkpoints" / "checkpoint-4")  # "killed" before step 4 was saved
    resumed = run(tmp_path / "a")
    assert resumed["resumed_from"] == "checkpoint-2" and resumed["global_step"] == 4
    assert resumed["best_validation_loss"] == pytest.approx(full["best_validation_loss"], abs=1e-4)
