"""Shared by the wheel test and the fault-injection suite: one wheel built from this checkout, installed once
into a fresh virtual environment that reuses the installed stack (``--system-site-packages``, no network), and
one uninterrupted smoke run of a GLUE row made with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW = "table2a.rte.roberta_large_r3f"
EXPERIMENT = "table2.rte.roberta_large_r3f"
_IGNORE = shutil.ignore_patterns(".git", ".venv", "runs", "reports", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints")


@dataclass(frozen=True)
class Installed:
    """A virtual environment with the wheel installed."""

    venv: Path
    wheel: Path

    @property
    def cli(self) -> Path:
        return self.venv / "bin" / "r3f-repro"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        """The caller's environment without this checkout on the path: the wheel's files only."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg",
                   PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        return env

    def run(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.cli), *args], cwd=cwd, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """``pip wheel`` of a copy of this checkout, installed into a fresh venv (no network, no dependencies)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=_IGNORE)  # build outside the checkout: no build/ left in it
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(base / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (base / "dist").glob("r3f_repro-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True,
                   timeout=120)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return Installed(venv, wheel)


@dataclass(frozen=True)
class SmokeRun:
    """``reproduce --rows ROW`` with the installed wheel, from an empty folder."""

    cwd: Path
    process: subprocess.CompletedProcess
    batch: Path

    @property
    def results(self) -> dict:
        return json.loads((self.batch / EXPERIMENT / "seed-1" / "results.json").read_text())


@pytest.fixture(scope="session")
def smoke_run(installed, tmp_path_factory) -> SmokeRun:
    cwd = tmp_path_factory.mktemp("empty")
    process = installed.run("reproduce", "--rows", ROW, cwd=cwd)
    batches = sorted((cwd / "runs").iterdir()) if (cwd / "runs").is_dir() else []
    assert process.returncode == 0 and batches, process.stdout + process.stderr
    return SmokeRun(cwd, process, batches[-1])
