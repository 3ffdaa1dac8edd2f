"""Fault: `kill -9` of a batch in the middle of training, then `reproduce --resume` (without --rows): the run
resumes from its last complete checkpoint and ends with the same metrics as the uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import EXPERIMENT, ROW


def _first_checkpoint(run_dir, deadline):
    while time.monotonic() < deadline:
        for state in run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"):
            try:
                json.loads(state.read_text())
                return state.parent
            except ValueError:
                pass  # being written
        time.sleep(0.02)
    return None


def test_kill_9_mid_training_then_resume_gives_identical_metrics(installed, smoke_run, tmp_path) -> None:
    process = subprocess.Popen([str(installed.cli), "reproduce", "--rows", ROW, "--out", "runs"], cwd=tmp_path,
                               env=installed.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # its own process group: the kernel dies with it
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list(tmp_path.glob(f"runs/*/{EXPERIMENT}/seed-1")):
            time.sleep(0.05)
        (run_dir,) = tmp_path.glob(f"runs/*/{EXPERIMENT}/seed-1")
        checkpoint = _first_checkpoint(run_dir, deadline)
        assert checkpoint is not None, "training never wrote a checkpoint"
        os.killpg(process.pid, signal.SIGKILL)  # kill -9 of the runner and its kernel
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    assert not (run_dir / "results.json").exists(), "killed too late: the run had finished"
    batch = run_dir.parent.parent
    check = installed.run("check", "--results", str(batch), "--profile", "smoke", cwd=tmp_path)
    assert check.returncode == 2 and "interrupted" in check.stderr  # no silent pass on a killed run

    resumed = installed.run("reproduce", "--resume", str(batch), cwd=tmp_path)  # no --rows: the batch's own
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 runs into" in resumed.stderr  # only the batch's experiment, not every target row
    result = json.loads((run_dir / "results.json").read_text())
    train = result["extra"]["train"]
    assert train["resumed_from"] is not None and train["global_step"] == 120
    uninterrupted = smoke_run.results
    assert result["metrics"] == uninterrupted["metrics"]
    assert train["best_metric"] == uninterrupted["extra"]["train"]["best_metric"]
    assert train["last_train_loss"] == uninterrupted["extra"]["train"]["last_train_loss"]
    assert (run_dir.parent / "seed-1.failed-1").is_dir()  # the killed attempt is kept, not overwritten


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path) -> None:
    """A kill during the Trainer's save leaves a folder without (or with a truncated) trainer_state.json;
    transformers' get_last_checkpoint would pick it and the resume would fail."""
    from r3f_utils.experiments.checkpoints import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    for step, state in ((10, '{"global_step": 10}'), (20, None), (30, '{"global_st')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"partial")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
