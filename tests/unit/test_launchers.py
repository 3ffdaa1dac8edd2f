"""reproduce's launchers: the local pool (--jobs, one device per worker) and SLURM job arrays through submitit,
run here with submitit's local executor (the same submission path, no SLURM). Toy notebooks, no ML."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from r3f_utils.cli import main
from r3f_utils.launchers import (
    LAUNCHER_RECORD,
    SlurmOptions,
    default_jobs,
    read_slurm_options,
    run_local,
    slot_environments,
    submit_slurm,
)
from r3f_utils.registry import load_registry, select_rows
from r3f_utils.runner import RunnerError, plan_jobs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registry"
TOY = FIXTURES / "toy_registry.yaml"
LAUNCHER = FIXTURES / "launcher_registry.yaml"


def test_default_jobs_one_per_gpu_or_per_core(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_jobs("paper", gpus=["0", "1", "2"]) == 3
    assert default_jobs("smoke", gpus=["0", "1", "2"]) == 8  # smoke stays on CPU: one 1-thread run per core
    assert default_jobs("paper", gpus=[]) == 1  # a CPU run of a real model takes every core
    assert default_jobs("smoke", gpus=[]) == 8


def test_slot_environments_pin_one_device_per_worker(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert slot_environments(3, "paper", gpus=["4", "6"]) == [
        {"CUDA_VISIBLE_DEVICES": "4"}, {"CUDA_VISIBLE_DEVICES": "6"}, {"CUDA_VISIBLE_DEVICES": "4"}]
    assert slot_environments(2, "smoke", gpus=["0"]) == [{}, {}]  # smoke stays on CPU, 1 thread per tiny model
    assert slot_environments(2, "cpu", gpus=[]) == [{"OMP_NUM_THREADS": "4"}] * 2  # the cores split between runs
    with pytest.raises(RunnerError, match="--jobs must be at least 1"):
        slot_environments(0, "smoke", gpus=[])


def test_slurm_options_from_yaml_and_flags(tmp_path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("partition: gpu\ntime_min: 90\nsetup: [module load cuda]\nadditional: {exclude: node3}\n")
    options = read_slurm_options(config, time_min=30, partition=None)
    assert (options.partition, options.time_min, options.setup) == ("gpu", 30, ["module load cuda"])
    config.write_text("partiton: gpu\n")
    with pytest.raises(RunnerError, match=r"unknown slurm option\(s\) \['partiton'\]"):
        read_slurm_options(config)
    with pytest.raises(RunnerError, match="executor must be one of slurm, local"):
        SlurmOptions(executor="pbs")
    with pytest.raises(RunnerError, match="time_min must be a positive integer"):
        SlurmOptions(time_min=0)


def test_local_pool_runs_jobs_at_once_each_worker_on_its_gpu(tmp_path) -> None:
    rows = select_rows(load_registry(TOY), ["toy.single", "toy.multi"])
    jobs = plan_jobs(rows, TOY, profile="paper", seeds=1)  # 2 runs, 2 workers
    outcomes = run_local(jobs, tmp_path, n_jobs=2, gpus=["0", "1"], show_progress=False)
    assert [o.job.folder for o in outcomes] == [j.folder for j in jobs]  # job order, whatever finished first
    assert all(o.status == "ok" and (o.run_dir / "results.json").is_file() for o in outcomes)
    assert {o.extra["cuda_visible_devices"] for o in outcomes} <= {"0", "1"}
    with pytest.raises(RunnerError, match="never overwritten"):  # the runner's rule, in the pool too
        run_local(jobs[:2], tmp_path, n_jobs=2, gpus=[], show_progress=False)


def _wait(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def test_slurm_array_two_rows_two_seeds_killed_job_resumed(tmp_path, capsys) -> None:
    rows = load_registry(LAUNCHER)
    jobs = plan_jobs(rows, LAUNCHER, profile="smoke")  # smoke.seeds: 2 -> 2 rows x 2 seeds
    assert len(jobs) == 4
    options = SlurmOptions(executor="local", time_min=10, gpus_per_job=0, cpus_per_job=1)
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

    code = main(["reproduce", "--registry", str(LAUNCHER), "--resume", str(tmp_path), "--launcher", "slurm",
                 "--slurm-executor", "local", "--time-min", "10", "--gpus-per-job", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("reproduced") >= 2 and "2/2" in out  # the checker judged both rows on both seeds
    resumed = json.loads((victim_dir / "results.json").read_text())
    assert resumed["extra"]["resumed_from"] >= 3  # the rerun continued from the killed job's checkpoints
    assert (victim_dir.parent / "seed-2.failed-1").is_dir()  # the killed attempt kept, not overwritten
    record_after = json.loads((tmp_path / LAUNCHER_RECORD).read_text())
    changed = {k for k in record["jobs"] if record["jobs"][k] != record_after["jobs"][k]}
    assert changed == {str(victim_job.folder)}  # only the killed seed was submitted again


def test_warm_kernel_zygote_runs_notebooks_in_forked_kernels(tmp_path) -> None:
    from r3f_utils.runner import _kernel_environment, run_jobs
    from r3f_utils.warm_kernel import KERNEL_NAME, SOCKET_ENV, warm_kernels

    jobs = plan_jobs(select_rows(load_registry(TOY), ["toy.single"]), TOY, seeds=2)
    with _kernel_environment("smoke"), warm_kernels(preload=("ipykernel.kernelapp",)) as name:
        socket_path = Path(os.environ[SOCKET_ENV])
        assert name == KERNEL_NAME and socket_path.exists()  # the zygote is up
        outcomes = run_jobs(jobs, tmp_path, kernel_name=name, show_progress=False)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    values = [json.loads((o.run_dir / "results.json").read_text())["metrics"]["accuracy"] for o in outcomes]
    assert values == [50.0, 52.0]  # seed 1 and 2 of toy.single (smoke step 2.0): each kernel got its parameters
    assert not socket_path.exists() and SOCKET_ENV not in os.environ  # zygote stopped, environment restored
