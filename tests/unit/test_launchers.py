"""reproduce's launchers: the local pool (--jobs, one device per worker) and SLURM job arrays through submitit,
run here with submitit's local executor (the same submission path, no SLURM). Toy notebooks, no ML."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from r3f_utils.launchers import (
    SlurmOptions,
    default_jobs,
    read_slurm_options,
    run_local,
    slot_environments,
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


def test_slurm_array_two_rows_two_seeds_killed_job_resumed(tmp_path) -> None:
    """Two rows x two seeds as a submitit job array (local executor), one job killed after its third
    checkpoint, ``reproduce --resume --launcher slurm`` picks it up; the checker judges all four
    (tests/unit/_slurm_scenario.py, run in its own process session)."""
    import subprocess
    import sys

    script = Path(__file__).with_name("_slurm_scenario.py")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=600, start_new_session=True, cwd=root, env=env)
    assert proc.returncode == 0 and "SCENARIO OK" in proc.stdout, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


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


def test_local_pool_starts_the_longest_runs_first() -> None:
    """Longest first by estimated work (updates x examples x tokens x method cost x stages), in smoke and paper."""
    from r3f_utils.launchers import longest_first

    registry_path = Path(__file__).resolve().parents[2] / "results_registry.yaml"
    rows = load_registry(registry_path)
    for profile, first, before, after in [
        ("smoke", "table4.cnn_dailymail.bart_r3f", "fig5.freelb", "fig3.freelb"),  # 12 probing stages before 1
        ("paper", "fig5.freelb", "table2.mnli.roberta_large_r3f", "table2.rte.roberta_large_r3f"),  # 12 stages
    ]:
        jobs = plan_jobs(rows, registry_path, profile=profile, seeds=1)
        order = [jobs[i].experiment for i in longest_first(jobs)]
        assert sorted(order) == sorted(j.experiment for j in jobs)  # a permutation: every run, once
        assert order[0] == first, order[:5]
        assert order.index(before) < order.index(after)
    assert order[-1].startswith("table1.")  # no training: counted passes and a few timed steps


def test_warm_kernels_log_into_the_notebook_and_leave_the_zygotes_objects_to_it(tmp_path, monkeypatch, capfd) -> None:
    """A handler the zygote created (transformers' logger, say) writes into the notebook, as in a cold kernel, not
    onto the batch's console; the zygote's imported objects are frozen out of the kernels' garbage collections;
    the runner's kernel manager is the one with the shorter idle polls."""
    import re

    from r3f_utils.runner import KERNEL_MANAGER, _kernel_environment, run_jobs
    from r3f_utils.warm_kernel import warm_kernels
    from r3f_utils.warm_kernel_manager import WarmKernelClient, WarmKernelManager

    assert f"{WarmKernelManager.__module__}.{WarmKernelManager.__name__}" == KERNEL_MANAGER
    assert isinstance(WarmKernelManager().client(), WarmKernelClient)  # jupyter_client still takes our client
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    jobs = plan_jobs(select_rows(load_registry(TOY), ["toy.single"]), TOY, seeds=1,
                     overrides={"log_message": "logged in the kernel"})
    with _kernel_environment("smoke"), warm_kernels(preload=("ipykernel.kernelapp", "_zygote_logging")) as name:
        (outcome,) = run_jobs(jobs, tmp_path, kernel_name=name, show_progress=False)
    assert outcome.status == "ok", outcome.error
    notebook = (outcome.run_dir / "notebook.ipynb").read_text()
    assert "logged in the kernel" in notebook
    assert "logged in the kernel" not in capfd.readouterr().err
    assert int(re.search(r"objects frozen by the zygote: (\d+)", notebook).group(1)) > 1000


def test_figure_1_reads_the_finished_runs_while_others_still_run(tmp_path) -> None:
    from r3f_utils.experiments.wall_time import collect_wall_times
    from r3f_utils.results import write_results

    (tmp_path / "batch.json").write_text("{}")
    write_results(tmp_path / "fig1.sst2.r3f" / "seed-1", experiment="fig1.sst2.r3f", profile="smoke", seed=1,
                  metrics={"wall_time_to_best": 2.0, "seconds_per_epoch": 1.0}, parameters={"method": "r3f"})
    running = tmp_path / "fig1.sst2.smart" / "seed-1"  # another worker's run, notebook started, no results yet
    running.mkdir(parents=True)
    (running / "notebook.ipynb").write_text("{}")
    assert collect_wall_times(tmp_path)["wall_time_to_best"] == {"r3f": [2.0]}
