"""Runner: planning, parameter validation, and end-to-end papermill runs of the toy notebook (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from r3f_utils.cli import main
from r3f_utils.registry import load_registry, select_rows
from r3f_utils.results import read_results
from r3f_utils.runner import RunnerError, parse_override, plan_jobs, run_jobs, validate_jobs

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"


@pytest.fixture(scope="module")
def rows():
    return load_registry(TOY)


def test_parse_override():
    assert parse_override("learning_rate=1e-5") == ("learning_rate", 1e-5)
    assert parse_override("languages=[en, fr]") == ("languages", ["en", "fr"])
    assert parse_override("fail=true") == ("fail", True)
    assert parse_override("model_name=roberta-base") == ("model_name", "roberta-base")
    with pytest.raises(RunnerError, match="key=value"):
        parse_override("oops")


def test_plan_one_job_per_experiment_and_seed(rows):
    smoke = plan_jobs(rows, TOY, profile="smoke")
    assert [(j.experiment, j.seed) for j in smoke] == [("toy.single", 1), ("toy.multi", 1), ("toy.fails", 1)]
    assert smoke[1].rows == ("toy.best", "toy.median")
    assert smoke[0].parameters == {"value": 50.0, "step": 2.0}  # smoke.parameters merged over parameters
    paper = plan_jobs(select_rows(rows, ["toy.multi"]), TOY, profile="paper")
    assert [j.seed for j in paper] == list(range(1, 11))  # max_of_10 / median_of_10 imply 10 seeds
    assert len(plan_jobs(rows, TOY, profile="paper", seeds=2)) == 6
    injected = paper[0].injected(Path("/tmp/x"))
    assert (injected["experiment"], injected["profile"], injected["seed"]) == ("toy.multi", "paper", 1)


def test_unknown_parameter_is_an_error(rows):
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), TOY, overrides={"vaule": 1.0})
    with pytest.raises(RunnerError, match=r"'vaule' is not declared by toy\.ipynb"):
        validate_jobs(jobs)
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), TOY, overrides={"value": "1e-5"})
    with pytest.raises(RunnerError, match=r"'1e-5' is a string, not a number \(it is quoted\); write 1e-5"):
        validate_jobs(jobs)


def test_cli_unknown_set_exits_2(tmp_path, capsys):
    code = main(
        [
            "reproduce",
            "--registry",
            str(TOY),
            "--rows",
            "toy.single",
            "--out",
            str(tmp_path),
            "--set",
            "vaule=3",
        ]
    )
    assert code == 2 and "vaule" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.notebooks
def test_reproduce_end_to_end(tmp_path, capsys):
    code = main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    (batch,) = tmp_path.iterdir()
    run = batch / "toy.single" / "seed-1"
    assert {p.name for p in run.iterdir()} >= {"notebook.ipynb", "results.json", "papermill.log"}
    (record,) = read_results(batch)
    assert (record.experiment, record.profile, record.seed, record.metrics) == (
        "toy.single",
        "smoke",
        1,
        {"accuracy": 50.0},
    )
    assert "toy.single" in out and "reproduced" in out and "profile smoke" in out


@pytest.mark.notebooks
def test_failing_notebook_does_not_stop_the_batch_and_names_the_cell(tmp_path, capsys):
    code = main(
        ["reproduce", "--registry", str(TOY), "--rows", "toy.fails", "toy.single", "--out", str(tmp_path)]
    )
    captured = capsys.readouterr()
    err = captured.err
    assert code == 1
    # the check's count of failures includes the run whose notebook raised (it said "0 failed")
    assert "; 1 failed (1 run whose notebook raised)" in captured.out
    (batch,) = tmp_path.iterdir()
    assert (batch / "toy.single" / "seed-1" / "results.json").is_file()
    error = (batch / "toy.fails" / "seed-1" / "error.txt").read_text()
    assert "cell" in error and "`if fail:`" in error and "RuntimeError: toy failure requested" in error
    assert "FAILED toy.fails/seed-1" in err


@pytest.mark.notebooks
def test_resume_skips_finished_and_reruns_failed_seeds(rows, tmp_path):
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), TOY, seeds=2)
    (tmp_path / "toy.single" / "seed-2" / "checkpoints" / "checkpoint-4").mkdir(parents=True)  # failed attempt
    first = run_jobs(jobs[:1], tmp_path, show_progress=False)
    assert [o.status for o in first] == ["ok"]
    with pytest.raises(RunnerError, match="never overwritten"):
        run_jobs(jobs, tmp_path, show_progress=False)
    again = run_jobs(jobs, tmp_path, resume=True, show_progress=False)
    assert [o.status for o in again] == ["skipped", "ok"]
    assert (tmp_path / "toy.single" / "seed-2.failed-1").is_dir()
    # the failed attempt's checkpoints moved into the new attempt, where the notebook resumes from them
    assert (tmp_path / "toy.single" / "seed-2" / "checkpoints" / "checkpoint-4").is_dir()
    assert not (tmp_path / "toy.single" / "seed-2.failed-1" / "checkpoints").exists()
    assert sorted(r.metrics["accuracy"] for r in read_results(tmp_path)) == [50.0, 52.0]


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_notebook_saves_per_cell_except_in_smoke(rows, tmp_path, monkeypatch, profile):
    """cpu/paper runs are saved at every cell (a long run can be watched); a smoke run's notebook is written
    before it starts (an interrupted run is still seen) and once executed, not ~40 times."""
    import json

    import papermill

    calls = []
    real = papermill.execute_notebook

    def recording(*args, **kwargs):
        calls.append({k: kwargs.get(k) for k in ("prepare_only", "request_save_on_cell_execute")})
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", recording)
    (outcome,) = run_jobs(plan_jobs(select_rows(rows, ["toy.single"]), TOY, profile=profile, seeds=1), tmp_path,
                          show_progress=False)
    assert outcome.status == "ok"
    if profile == "smoke":
        assert calls == [{"prepare_only": True, "request_save_on_cell_execute": None},
                         {"prepare_only": None, "request_save_on_cell_execute": False}]
    else:
        assert calls == [{"prepare_only": None, "request_save_on_cell_execute": True}]
    executed = json.loads((outcome.run_dir / "notebook.ipynb").read_text())
    assert executed["metadata"]["papermill"]["end_time"]  # the executed notebook, not the prepared one
