"""The run-folder layout, owned here: every module that builds or reads a batch's paths asks this one.

``<out>/<batch>/``                   a batch (``reproduce``; the batch folder is a UTC timestamp)
``<batch>/batch.json``               its manifest: profile, experiments, seeds, ``--set`` overrides (the runner's)
``<batch>/<experiment>/seed-<k>/``   one run: ``notebook.ipynb`` (executed), ``results.json`` (the notebook's),
                                     ``papermill.log``, ``error.txt`` on failure, ``checkpoints/`` while training

A ``results.json`` outside this layout (a notebook run by hand, ``train``) is still a result; only a run folder
inside a batch (a ``seed-<k>`` folder two levels below a ``batch.json``) is held to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "BATCH_MANIFEST",
    "CHECKPOINTS",
    "ERROR_FILE",
    "EXECUTED_NOTEBOOK",
    "RESULTS_FILENAME",
    "batch_folder",
    "batch_of",
    "run_dirs",
    "run_experiment",
    "run_folder",
    "run_seed",
]

BATCH_MANIFEST = "batch.json"
RESULTS_FILENAME = "results.json"
EXECUTED_NOTEBOOK = "notebook.ipynb"
ERROR_FILE = "error.txt"
CHECKPOINTS = "checkpoints"  # the notebooks' checkpoint folder inside a run folder
_RUN_FOLDER = re.compile(r"^seed-(\d+)$")


def run_folder(experiment: str, seed: int) -> Path:
    """A run's folder relative to its batch: ``<experiment>/seed-<seed>``."""
    return Path(experiment) / f"seed-{seed}"


def run_seed(run_dir: str | Path) -> int | None:
    """The seed a ``seed-<k>`` run folder is named for, None for any other folder."""
    match = _RUN_FOLDER.match(Path(run_dir).name)
    return int(match.group(1)) if match else None


def run_experiment(run_dir: str | Path) -> str:
    """The experiment whose folder holds run folder ``run_dir`` (``<batch>/<experiment>/seed-<k>``)."""
    return Path(run_dir).parent.name


def batch_folder(run_dir: str | Path) -> Path:
    """Where the layout puts the batch of run folder ``run_dir``: two levels up (``<batch>/<experiment>/<run>``),
    whether or not a runner made it (a figure collects the runs beside its own there)."""
    return Path(run_dir).parent.parent


def batch_of(run_dir: str | Path) -> Path | None:
    """The runner batch holding run folder ``run_dir`` (``<batch>/<experiment>/seed-<k>`` with ``<batch>/batch.json``),
    None outside one."""
    run = Path(run_dir)
    if run_seed(run) is None or not (batch_folder(run) / BATCH_MANIFEST).is_file():
        return None
    return batch_folder(run)


def run_dirs(batch_dir: str | Path) -> Iterator[Path]:
    """Every run folder of a batch, sorted (finished or not)."""
    yield from sorted(p for p in Path(batch_dir).glob("*/seed-*") if p.is_dir() and run_seed(p) is not None)
