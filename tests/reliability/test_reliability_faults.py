"""Fault injection, in-process: full disk / read-only output (os calls made to fail), corrupted inputs, and the
cases that used to pass silently. Each ends in a clear message (exit 2 from the CLI) and leaves nothing half
written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

import r3f_utils.runner as runner
from r3f_utils.cli import main
from r3f_utils.registry import load_registry, select_rows
from r3f_utils.results import ResultsError, write_results
from r3f_utils.runner import check_resumable, plan_jobs, write_batch_manifest

REPO = Path(__file__).resolve().parents[2]
TOY_DIR = REPO / "tests" / "fixtures" / "registry"
TOY = TOY_DIR / "toy_registry.yaml"


def _fail(monkeypatch, name: str, code: int, under: Path | None = None) -> None:
    """Make ``os.<name>`` raise OSError(code) (for paths under ``under`` when given)."""
    real = getattr(os, name)

    def broken(*args, **kwargs):
        if under is None or str(args[0]).startswith(str(under)):
            raise OSError(code, os.strerror(code), str(args[0]) if args else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, broken)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".results"))


def _toy_batch(tmp_path: Path, overrides=None, value=50.0, seeds=(1,)) -> Path:
    """A finished smoke batch of toy.single made without running a kernel (manifest + results.json)."""
    rows = load_registry(TOY, check_notebooks=False)
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), TOY, overrides=overrides or {})
    batch = tmp_path / "runs" / "20260101T000000Z"
    batch.mkdir(parents=True)
    write_batch_manifest(batch, jobs, seeds=None, overrides=overrides or {})
    for seed in seeds:
        write_results(batch / "toy.single" / f"seed-{seed}", experiment="toy.single", profile="smoke", seed=seed,
                      metrics={"accuracy": value},
                      parameters={"value": (overrides or {}).get("value", 50.0), "step": 2.0, "metric": "accuracy"})
    return batch


# ---- full disk / read-only output ------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "code", "fix"), [("write", errno.ENOSPC, "free disk space"),
                                                    ("fsync", errno.EIO, "check the output folder"),
                                                    ("open", errno.EROFS, "read-only")])
def test_results_json_write_fault_leaves_no_partial_file(tmp_path, monkeypatch, call, code, fix) -> None:
    earlier = write_results(tmp_path / "a" / "seed-1", experiment="x", profile="smoke", seed=1,
                            metrics={"accuracy": 1.0}, parameters={})
    before = earlier.read_bytes()
    _fail(monkeypatch, call, code)
    pattern = rf"results\.json: cannot write \(.*\): .*{fix}.*no results.json was written"
    with pytest.raises(ResultsError, match=pattern):
        write_results(tmp_path / "b" / "seed-1", experiment="x", profile="smoke", seed=1,
                      metrics={"accuracy": 2.0}, parameters={})
    monkeypatch.undo()
    assert not (tmp_path / "b" / "seed-1" / "results.json").exists()
    assert _leftovers(tmp_path) == [] and earlier.read_bytes() == before  # earlier results intact


def test_reproduce_out_is_a_file_exits_2(tmp_path, capsys) -> None:
    (tmp_path / "runs").write_text("not a folder")
    assert main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--out", str(tmp_path / "runs")]) == 2
    assert "a file is in the way of the output folder" in capsys.readouterr().err


def test_reproduce_out_read_only_exits_2(tmp_path, monkeypatch, capsys) -> None:
    _fail(monkeypatch, "mkdir", errno.EROFS, under=tmp_path)
    assert main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--out", str(tmp_path / "runs")]) == 2
    assert "read-only: choose a writable output folder" in capsys.readouterr().err


@pytest.mark.parametrize(("call", "code"), [("write", errno.ENOSPC), ("open", errno.EROFS)])
def test_report_fault_exits_2_without_empty_png(tmp_path, monkeypatch, capsys, call, code) -> None:
    batch = _toy_batch(tmp_path)
    _fail(monkeypatch, call, code, under=batch if call == "open" else None)
    assert main(["report", "--registry", str(TOY), "--results", str(batch)]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert any(f"{name}: cannot write" in err for name in ("report.png", "report.md", "report.html")), err
    assert not (batch / "report.png").exists() and _leftovers(batch) == []


@pytest.mark.parametrize(("call", "code"), [("write", errno.ENOSPC), ("replace", errno.EROFS)])
def test_pin_fault_leaves_registry_and_no_temp_yaml(tmp_path, monkeypatch, capsys, call, code) -> None:
    registry = _copy_toy(tmp_path)
    before = registry.read_bytes()
    batch = _toy_batch(tmp_path, value=51.0)
    _fail(monkeypatch, call, code)
    assert main(["pin", "--registry", str(registry), "--results", str(batch), "--rows", "toy.single"]) == 2
    monkeypatch.undo()
    assert "the registry is unchanged" in capsys.readouterr().err
    assert registry.read_bytes() == before and _leftovers(registry.parent) == []


def _copy_toy(tmp_path: Path) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir()
    registry = folder / "toy_registry.yaml"
    text = TOY.read_text().replace("../../notebooks_for_tests/", str(REPO / "tests" / "notebooks_for_tests") + "/")
    registry.write_text(text)
    return registry


# ---- two batches at the same second ----------------------------------------------------------------------

def test_batch_folders_never_shared_in_the_same_second(tmp_path, monkeypatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

    monkeypatch.setattr(runner, "datetime", Frozen)
    first, second = runner.new_batch_dir(tmp_path), runner.new_batch_dir(tmp_path)
    assert (first.name, second.name) == ("20260101T120000Z", "20260101T120000Z-2")


def test_two_batches_started_together_into_one_out(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "r3f_utils", "reproduce", "--registry", str(TOY), "--rows", "toy.single",
               "--out", str(tmp_path / "runs")]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    batches = sorted((tmp_path / "runs").iterdir())
    assert len(batches) == 2  # one folder each, nothing shared
    for batch in batches:
        (results,) = batch.rglob("results.json")
        assert json.loads(results.read_text())["metrics"] == {"accuracy": 50.0}
        assert (batch / "batch.json").is_file() and (batch / "report.html").is_file()


# ---- corrupted inputs --------------------------------------------------------------------------------------

def test_truncated_results_json_exits_2(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    path = batch / "toy.single" / "seed-1" / "results.json"
    path.write_bytes(path.read_bytes()[:40])
    assert main(["check", "--registry", str(TOY), "--results", str(batch), "--profile", "smoke"]) == 2
    assert "results.json: not a readable JSON file" in capsys.readouterr().err


def test_results_file_of_another_row_exits_2(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    (batch / "toy.multi").mkdir()
    shutil.copytree(batch / "toy.single" / "seed-1", batch / "toy.multi" / "seed-1")
    assert main(["check", "--registry", str(TOY), "--results", str(batch), "--profile", "smoke"]) == 2
    assert "holds experiment 'toy.single' seed 1, but lies in the run folder of 'toy.multi'" in capsys.readouterr().err


def test_executed_notebook_without_results_exits_2(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    run = batch / "toy.multi" / "seed-1"
    run.mkdir(parents=True)
    (run / "notebook.ipynb").write_text("{}")
    assert main(["check", "--registry", str(TOY), "--results", str(batch), "--profile", "smoke"]) == 2
    assert "an executed notebook without results.json" in capsys.readouterr().err


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda t: t.replace("  - id: toy.single", "\t- id: toy.single", 1), "YAML forbids tabs for indentation"),
    (lambda t: t.replace("metrics: {accuracy: 50.0}", "metrics: {accuracy: 50.0, accuracy: 90.0}", 1),
     "found duplicate key 'accuracy'"),
    (lambda t: t.replace("schema_version: 3\n", "", 1), "schema_version None is not supported"),
    (lambda t: t.replace("schema_version: 3\n", "schema_version: 99\n", 1), "schema_version 99 is not supported"),
], ids=["tabs", "duplicate-key", "no-schema-version", "future-schema-version"])
def test_corrupted_registry_exits_2_and_validate_says_so(tmp_path, capsys, corrupt, message) -> None:
    batch = _toy_batch(tmp_path)
    registry = _copy_toy(tmp_path)
    registry.write_text(corrupt(registry.read_text()))
    assert main(["check", "--registry", str(registry), "--results", str(batch), "--profile", "smoke"]) == 2
    assert message in capsys.readouterr().err
    assert main(["validate", "--registry", str(registry), "--no-notebooks"]) == 1  # never "OK"
    assert message in capsys.readouterr().err


def test_registry_with_a_bom_reads_as_without(tmp_path) -> None:
    batch = _toy_batch(tmp_path)
    registry = _copy_toy(tmp_path)
    registry.write_text("\ufeff" + registry.read_text(), encoding="utf-8")  # legal YAML: same rows, same verdict
    assert main(["check", "--registry", str(registry), "--results", str(batch), "--profile", "smoke"]) == 0


def test_string_number_parameter_is_refused_with_the_fix(tmp_path, capsys) -> None:
    """`papermill -r eps 1e-5` / a quoted YAML `eps: '1e-5'` give the string '1e-5'; the notebook and the runner
    say so (an unquoted YAML 1e-5 is a number: r3f_utils.yaml_io)."""
    from r3f_utils.experiments.glue import resolve_glue_config

    with pytest.raises(ValueError, match=r"parameter eps='1e-5' is invalid: a positive number \(a string is not"):
        resolve_glue_config(task="rte", method="r3f", profile="smoke", eps="1e-5", output_dir=str(tmp_path),
                            model_name="tiny-roberta", learning_rate=1e-3, max_updates=10, batch_size=8)
    registry = _copy_toy(tmp_path)
    registry.write_text(registry.read_text().replace("parameters: {value: 50.0, step: 1.0}",
                                                     "parameters: {value: '50.0', step: 1.0}", 1))
    assert main(["reproduce", "--registry", str(registry), "--rows", "toy.single", "--out", str(tmp_path)]) == 2
    assert "'parameters.value': '50.0' is a string, not a number (it is quoted); write 50.0" in capsys.readouterr().err


# ---- silent before -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["seed", "experiment", "output_dir", "profile"])
def test_set_of_a_runner_parameter_is_refused(tmp_path, capsys, key) -> None:
    assert main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--out", str(tmp_path),
                 "--set", f"{key}=3"]) == 2
    assert f"--set {key}=...: the runner sets {key!r}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no batch folder started


@pytest.mark.parametrize(("old", "new"), [
    ("row", "experiment"), ("smart_lambda", "smart_adv_lambda"), ("smart_steps", "smart_ascent_steps"),
    ("freelb_steps", "freelb_ascent_steps"), ("freelb_lr", "freelb_adv_lr")])
def test_set_of_an_old_spelling_is_refused_with_its_new_name(tmp_path, capsys, old, new) -> None:
    assert main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--out", str(tmp_path),
                 "--set", f"{old}=3"]) == 2
    assert (f"--set {old}=...: {old} was renamed {new} in registry schema 3 "
            "(docs/registry.md#migration-from-schema-2)") in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_resume_without_rows_plans_only_the_batch(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch)]) == 0  # all finished: no kernel
    captured = capsys.readouterr()
    assert "1 runs into" in captured.err and "toy.single" in captured.out and "toy.multi" not in captured.out


def test_resume_refuses_other_overrides_than_the_batch_ran_with(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path, overrides={"value": 60.0}, value=60.0)
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch), "--set", "value=70"]) == 2
    assert "the batch ran with --set value=60.0, this plan has --set value=70" in capsys.readouterr().err
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch)]) == 1  # reuses the recorded --set
    assert "1 ok/skipped" in capsys.readouterr().err  # the seed is kept (and judged: 60 is above the pin)


def test_resume_refuses_a_seed_run_with_other_parameters(tmp_path) -> None:
    batch = tmp_path / "old"
    write_results(batch / "toy.single" / "seed-1", experiment="toy.single", profile="smoke", seed=1,
                  metrics={"accuracy": 50.0}, parameters={"value": 600.0, "step": 2.0})
    jobs = plan_jobs(select_rows(load_registry(TOY), ["toy.single"]), TOY)
    write_batch_manifest(batch, jobs, seeds=None, overrides={})  # the manifest says no --set; the seed says 600
    with pytest.raises(runner.RunnerError, match=r"toy.single/seed-1 was run with value=600.0, this plan has "
                                                 r"value=50.0"):
        check_resumable(jobs, batch, {})


def test_resume_refuses_a_folder_without_batch_json(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    (batch / "batch.json").unlink()  # a batch made before manifests, or its batch.json deleted
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch)]) == 2
    err = capsys.readouterr().err
    assert f"{batch} holds no batch.json, so it is no batch of `reproduce`" in err
    assert "re-run the rows as a new batch (`reproduce --rows ...` without --resume)" in err
    assert not (batch / "toy.single" / "seed-1" / "notebook.ipynb").exists()  # nothing ran
    jobs = plan_jobs(select_rows(load_registry(TOY), ["toy.single"]), TOY)
    with pytest.raises(runner.RunnerError, match=r"holds no batch\.json"):
        check_resumable(jobs, batch, {})


def test_resume_of_a_run_folder_points_at_its_batch(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch / "toy.single" / "seed-1")]) == 2
    assert f"or point at the batch folder itself ({batch})" in capsys.readouterr().err
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch.parent)]) == 2  # the folder of batches
    assert f"or point at the batch folder itself ({batch})" in capsys.readouterr().err


def test_pin_refuses_a_batch_run_with_set(tmp_path, capsys) -> None:
    registry = _copy_toy(tmp_path)
    batch = _toy_batch(tmp_path, overrides={"value": 54.17}, value=54.17)
    assert main(["pin", "--registry", str(registry), "--results", str(batch)]) == 2
    assert "the batch ran with --set value=54.17; pins must come from the registry's own" in capsys.readouterr().err


def test_pin_pins_every_row_of_the_experiment(tmp_path, capsys) -> None:
    registry = _copy_toy(tmp_path)
    text = registry.read_text()
    for row in ("toy.best", "toy.median"):
        start = text.index(f"- id: {row}\n")
        end = text.index("\n", text.index("    parameters:", start)) + 1
        text = text[:end] + "    smoke: {expected: {accuracy: 1.0}, tolerance: {accuracy: 0.01}}\n" + text[end:]
    registry.write_text(text)
    rows = load_registry(registry, check_notebooks=False)
    jobs = plan_jobs(select_rows(rows, ["toy.multi"]), registry)
    batch = tmp_path / "runs" / "b"
    batch.mkdir(parents=True)
    write_batch_manifest(batch, jobs, seeds=None, overrides={})
    write_results(batch / "toy.multi" / "seed-1", experiment="toy.multi", profile="smoke", seed=1,
                  metrics={"accuracy": 50.0}, parameters={"value": 50.0, "step": 1.0})
    code = main(["pin", "--registry", str(registry), "--results", str(batch), "--rows", "toy.best"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "also pinning toy.median" in captured.err
    assert "toy.best:" in captured.out and "toy.median:" in captured.out


def test_check_rows_matching_nothing_exits_2(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    assert main(["check", "--registry", str(TOY), "--results", str(batch), "--profile", "smoke",
                 "--rows", "nope.*"]) == 2
    assert "--rows nope.*: matches no row, experiment or claim id" in capsys.readouterr().err


def test_results_of_unknown_rows_only_exit_2(tmp_path, capsys) -> None:
    write_results(tmp_path / "x", experiment="table9.unknown", profile="smoke", seed=1, metrics={"accuracy": 1.0},
                  parameters={})
    assert main(["check", "--registry", str(TOY), "--results", str(tmp_path), "--profile", "smoke"]) == 2
    assert "none of the results under" in capsys.readouterr().err
