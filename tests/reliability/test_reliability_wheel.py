"""The wheel works on its own: from an empty folder, `validate`, `reproduce` (smoke) and `check` succeed with
the registry, notebooks and fixtures shipped inside it (not this checkout's)."""

from __future__ import annotations

import json
import zipfile

from conftest import EXPERIMENT, ROW


def test_wheel_ships_registry_notebooks_and_fixtures(installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "r3f_utils/_data/results_registry.yaml" in names
    assert {"r3f_utils/_data/notebooks/glue.ipynb", "r3f_utils/_data/notebooks/summarization.ipynb"} <= names
    assert any(n.startswith("r3f_utils/_data/fixtures/glue/rte/") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(installed.wheel).read(metadata).decode()
    assert "Requires-Dist: transformers<6,>=5.17" in text and "Provides-Extra: rouge155" in text
    assert "Requires-Dist: torch>=2.1" in text  # a floor only: Colab/cluster CUDA builds stay


def test_wheel_validate_reproduce_check_from_an_empty_folder(installed, smoke_run) -> None:
    validate = installed.run("validate", cwd=smoke_run.cwd)
    assert validate.returncode == 0, validate.stderr
    assert "/site-packages/r3f_utils/_data/results_registry.yaml: OK" in validate.stdout  # the wheel's registry
    out = smoke_run.process.stdout
    assert f"{ROW}  accuracy" in out and "reproduced" in out
    assert f"report: {smoke_run.batch.relative_to(smoke_run.cwd)}/report.html" in out  # ends with the report path
    assert "without encryption" not in smoke_run.process.stderr  # no kernel TCP warning per run
    results = smoke_run.results
    assert "/site-packages/r3f_utils/_data/fixtures/glue" in results["parameters"]["data_dir"]
    check = installed.run("check", "--results", str(smoke_run.batch), "--profile", "smoke", cwd=smoke_run.cwd)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 below" in check.stdout and "0 failed" in check.stdout
    line = next(ln for ln in check.stdout.splitlines() if ln.startswith(ROW))
    assert " reproduced " in line
    manifest = json.loads((smoke_run.batch / "batch.json").read_text())
    assert manifest["experiments"] == [EXPERIMENT] and manifest["overrides"] == {}


def test_wheel_check_after_a_one_row_batch_is_short_and_the_report_opens_with_the_banner(installed, smoke_run) -> None:
    """The README's recipe (issue 19): `check` with no --profile/--rows checks what the batch ran, nothing else."""
    check = installed.run("check", "--results", str(smoke_run.batch), cwd=smoke_run.cwd)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = [ln.split()[0] for ln in check.stdout.splitlines() if ln.startswith("table")]
    assert ROW in listed and all(r.startswith("table2") and r.endswith(".rte.roberta_large_r3f") for r in listed)
    assert not any(ln.startswith(("claim ", "claims:")) for ln in check.stdout.splitlines())  # no claims section
    assert "missing" not in check.stdout.replace("0 missing", "")
    assert len(check.stdout.splitlines()) <= 8
    help_text = installed.run("--help", cwd=smoke_run.cwd).stdout
    assert help_text.startswith("usage: r3f-repro ")
    html = (smoke_run.batch / "report.html").read_text()
    assert html.index('id="banner"') < html.index('id="profile"') and "Smoke profile" in html
