"""The slurm-array scenario of test_launchers, run in its own process session by that test.

submitit's local executor signals the jobs it cancels; in the pytest process (fd capture, loggers holding the
captured streams of earlier tests) that could end the whole test session ("lost sys.stderr"), so the scenario
runs here, isolated, and the test checks its exit status and output.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

from r3f_utils.cli import main
from r3f_utils.launchers import LAUNCHER_RECORD, SlurmOptions, submit_slurm
from r3f_utils.registry import load_registry
from r3f_utils.runner import plan_jobs, write_batch_manifest

LAUNCHER = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "launcher_registry.yaml"


def _wait(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def scenario(tmp_path: Path) -> None:
    captured = io.StringIO()
    rows = load_registry(LAUNCHER)
    jobs = plan_jobs(rows, LAUNCHER, profile="smoke")  # smoke.seeds: 2 -> 2 rows x 2 seeds
    assert len(jobs) == 4
    options = SlurmOptions(executor="local", time_min=10, gpus_per_job=0, cpus_per_job=1)
    write_batch_manifest(tmp_path, jobs, seeds=None, overrides={})  # as `reproduce` does before it launches
    decided, submitted = submit_slurm(jobs, tmp_path, options)
    assert decided == [] and len(submitted) == 4
    record = json.loads((tmp_path / LAUNCHER_RECORD).read_text())
    assert set(record["jobs"]) == {str(j.folder) for j in jobs}

    victim_job, victim = submitted[1]  # toy.ckpt_a seed 2: killed after its third checkpoint
    victim_dir = tmp_path / victim_job.folder
    _wait(lambda: (victim_dir / "checkpoints" / "checkpoint-3").is_dir())
    victim.cancel()
    _wait(lambda: all(handle.done() for _, handle in submitted))
    assert not (victim_dir / "results.json").exists()
    assert all((tmp_path / j.folder / "results.json").is_file() for j, _ in submitted if j is not victim_job)

    with contextlib.redirect_stdout(captured):
        code = main(["reproduce", "--registry", str(LAUNCHER), "--resume", str(tmp_path), "--launcher", "slurm",
                     "--slurm-executor", "local", "--time-min", "10", "--gpus-per-job", "0"])
    out = captured.getvalue()
    assert code == 0, out
    assert out.count("reproduced") >= 2 and "2/2" in out  # the checker judged both rows on both seeds
    resumed = json.loads((victim_dir / "results.json").read_text())
    assert resumed["extra"]["resumed_from"] >= 3  # the rerun continued from the killed job's checkpoints
    assert (victim_dir.parent / "seed-2.failed-1").is_dir()  # the killed attempt kept, not overwritten
    record_after = json.loads((tmp_path / LAUNCHER_RECORD).read_text())
    changed = {k for k in record["jobs"] if record["jobs"][k] != record_after["jobs"][k]}
    assert changed == {str(victim_job.folder)}  # only the killed seed was submitted again


if __name__ == "__main__":
    scenario(Path(sys.argv[1]))
    print("SCENARIO OK")
