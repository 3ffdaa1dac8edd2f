"""Colab header of every notebook: badge first, install cell before the parameters; the install cell's logic
runs offline with pip faked (it must do nothing where the package imports)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from r3f_utils.colab import REPOSITORY, badge_source, install_source, stamp_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_starts_with_the_current_colab_header(path, tmp_path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].source == badge_source(path.name)
    github = REPOSITORY.removeprefix("https://github.com/")
    assert f"github/{github}/blob/main/notebooks/{path.name}" in nb.cells[0].source
    install = next(i for i, c in enumerate(nb.cells) if "colab-install" in c.metadata.get("tags", []))
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert install < params
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    assert not stamp_notebook(copy), f"{path.name}: header stale or missing: run `python -m r3f_utils.colab`"


def _run_install_cell(monkeypatch, *, installed: bool, colab: bool = False, extras=("cpu",)) -> list:
    calls: list = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real_find_spec(name, *a) if name != "r3f_utils" else
                                          (object() if installed else None)))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(compile(install_source(extras), "<install cell>", "exec"), {})
    return calls


def test_install_cell_does_nothing_when_the_package_imports(monkeypatch) -> None:
    assert _run_install_cell(monkeypatch, installed=True) == []


def test_install_cell_installs_with_the_notebooks_extras_when_missing(monkeypatch) -> None:
    ((cmd, kwargs),) = _run_install_cell(monkeypatch, installed=False)
    assert cmd == [sys.executable, "-m", "pip", "install", "-q", f"r3f-repro[cpu] @ git+{REPOSITORY}@main"]
    assert kwargs == {"check": True}
    ((cmd, _),) = _run_install_cell(monkeypatch, installed=False, extras=())
    assert cmd[-1] == f"r3f-repro @ git+{REPOSITORY}@main"


def test_install_cell_on_colab_reports_the_gpu_or_its_absence(monkeypatch, capsys) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _run_install_cell(monkeypatch, installed=True, colab=True)
    assert "no GPU: Runtime > Change runtime type > GPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    _run_install_cell(monkeypatch, installed=True, colab=True)
    assert "GPU: Tesla T4; fp16 mixed precision available" in capsys.readouterr().out


def test_a_new_notebook_gets_the_header_once(tmp_path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# New experiment"),
                                         nbformat.v4.new_code_cell("row = 'x'", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("print(row)")])
    path = tmp_path / "new.ipynb"
    nbformat.write(nb, path)
    assert stamp_notebook(path) and not stamp_notebook(path)
    cells = nbformat.read(path, as_version=4).cells
    assert [c.metadata.get("tags", [None])[0] for c in cells] == ["colab-badge", None, "colab-install", "parameters",
                                                                  None]
