"""Notebook executions for the smoke tests, in the runner's warm kernels (:mod:`r3f_utils.warm_kernel`).

One zygote per test session, started at the first execution with the environment the runner gives a smoke batch's
kernels, imports torch/transformers/datasets once; every execution gets a fresh kernel forked from it (so a notebook
that reads a variable it does not define fails as in a cold kernel), started and stopped by the runner's kernel
manager with the runner's kernel arguments. ``WORKERS`` executions at a time, threads of the test process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from r3f_utils.results import ResultRecord, read_results

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2  # kernels at a time (the machine has 2 cores)
_zygote: dict[str, Any] = {}  # "name": the warm kernel's name, "env": the kernels' environment
_lock = threading.Lock()


def _warm_kernel() -> tuple[str, dict[str, str]]:
    """Start the session's zygote once (stopped at exit); its kernel name and the kernels' environment."""
    from r3f_utils.runner import _kernel_environment
    from r3f_utils.warm_kernel import warm_kernels

    with _lock:
        if not _zygote:
            stack = contextlib.ExitStack()
            with _kernel_environment("smoke"):  # this checkout on PYTHONPATH, offline, CPU: the zygote's too
                _zygote["name"] = stack.enter_context(warm_kernels())
                _zygote["env"] = dict(os.environ)  # + the warm kernelspec's folder and the zygote's socket
            atexit.register(stack.close)
    return _zygote["name"], _zygote["env"]


@contextlib.contextmanager
def _kernel_environment() -> Iterator[str]:
    """The kernels' environment in this process while notebooks run (kernels are started with it); the kernel
    name to run them with."""
    name, env = _warm_kernel()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield name
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _execute(notebook: Path, out_dir: Path, parameters: Mapping[str, Any], kernel_name: str) -> ResultRecord:
    import papermill

    from r3f_utils.runner import KERNEL_ARGUMENTS, KERNEL_MANAGER

    out_dir.mkdir(parents=True)
    papermill.execute_notebook(str(notebook), str(out_dir / "notebook.ipynb"),
                               parameters={**parameters, "output_dir": str(out_dir / "run")},
                               kernel_name=kernel_name, cwd=str(notebook.parent), progress_bar=False,
                               extra_arguments=KERNEL_ARGUMENTS, kernel_manager_class=KERNEL_MANAGER,
                               request_save_on_cell_execute=False)
    (record,) = read_results(out_dir / "run")
    return record


def execute(notebook: Path, out_dir: Path, parameters: Mapping[str, Any]) -> ResultRecord:
    """Run ``notebook`` with papermill in a warm kernel into ``out_dir``; return its results.json."""
    with _kernel_environment() as name:
        return _execute(notebook, out_dir, parameters, name)


def execute_all(notebook: Path, base: Path, jobs: Mapping[str, Mapping[str, Any]]
                ) -> dict[str, ResultRecord | BaseException]:
    """Execute ``notebook`` once per job (name -> parameters) into ``base/<name>``, ``WORKERS`` at a time in warm
    kernels; a failed execution is returned as its exception (reported by that job's test)."""
    from concurrent.futures import ThreadPoolExecutor

    with _kernel_environment() as name:
        def one(job: str) -> ResultRecord | BaseException:
            try:
                return _execute(notebook, base / job, jobs[job], name)
            except Exception as err:
                return err

        with ThreadPoolExecutor(WORKERS) as pool:
            return dict(zip(jobs, pool.map(one, jobs), strict=True))
