"""Pinning smoke expectations edits only the `expected:` mappings, validates, and refuses what it cannot pin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from r3f_utils.cli import main
from r3f_utils.registry import load_registry
from r3f_utils.results import write_results

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"


@pytest.fixture()
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    shutil.copy(TOY, path)
    return path


def _smoke_run(root: Path, row: str, accuracy: float, seed: int = 1) -> None:
    """A run of ``row`` in batch ``root``, with the batch.json `reproduce` writes (no --set)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "batch.json").write_text(json.dumps({"schema_version": 1, "profile": "smoke", "experiments": [row],
                                                 "seeds": None, "overrides": {}}))
    write_results(root / row / f"seed-{seed}", experiment=row, profile="smoke", seed=seed,
                  metrics={"accuracy": accuracy}, parameters={})


def test_pin_rewrites_expected_and_keeps_the_rest(registry: Path, tmp_path: Path, capsys) -> None:
    _smoke_run(tmp_path / "runs", "toy.single", 51.234567)
    before = registry.read_text()
    assert main(["pin", "--registry", str(registry), "--results", str(tmp_path / "runs")]) == 0
    assert "toy.single: accuracy 50.0 -> 51.2346" in capsys.readouterr().out
    after = registry.read_text()
    assert "expected: {accuracy: 51.2346}" in after
    assert before.replace("expected: {accuracy: 50.0}", "expected: {accuracy: 51.2346}", 1) == after
    row = next(r for r in load_registry(registry, check_notebooks=False) if r.id == "toy.single")
    assert row.smoke.expected == {"accuracy": 51.2346}
    # the pinned value now passes the checker; the old one would have failed
    assert main(["check", "--registry", str(registry), "--results", str(tmp_path / "runs"), "--profile", "smoke",
                 "--rows", "toy.single"]) == 0


def test_pin_refuses_a_row_without_an_expected_block(registry: Path, tmp_path: Path, capsys) -> None:
    _smoke_run(tmp_path / "runs", "toy.multi", 50.0)
    code = main(["pin", "--registry", str(registry), "--results", str(tmp_path / "runs"), "--rows", "toy.multi"])
    assert code == 2
    assert "has no 'expected: {...}'" in capsys.readouterr().err
    assert registry.read_text() == TOY.read_text()  # nothing written


def test_pin_refuses_when_there_is_nothing_to_pin(registry: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["pin", "--registry", str(registry), "--results", str(tmp_path / "empty")]) == 2
    assert "no smoke runs" in capsys.readouterr().err


def test_pin_refuses_runs_outside_a_batch_of_reproduce(registry: Path, tmp_path: Path, capsys) -> None:
    _smoke_run(tmp_path / "runs", "toy.single", 51.0)
    (tmp_path / "runs" / "batch.json").unlink()  # a batch made before manifests, or its batch.json deleted
    assert main(["pin", "--registry", str(registry), "--results", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'runs'} holds no batch.json, so it is no batch of `reproduce`" in err
    assert "re-run `reproduce --rows toy.single` (without --set), then pin with --results" in err
    assert registry.read_text() == TOY.read_text()  # nothing written
