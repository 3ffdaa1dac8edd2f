"""The GitHub Actions workflows in ci/: actionlint finds nothing, and every command they run is one the README
documents (so the README and CI cannot drift apart), with row patterns that select registry rows."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from r3f_utils.registry import load_registry, select_rows

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "ci").glob("*.yml"))


def _readme_commands() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = set()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()  # the README aligns its comments after two spaces
            if command:
                lines.add(command)
                lines.update(part.strip() for part in command.split(" && "))  # `install && run`: both documented
    return lines


def _run_lines(path: Path) -> list[str]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [line.strip() for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
            for line in step["run"].splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_three_workflows_exist() -> None:
    assert [p.stem for p in WORKFLOWS] == ["paper-glue", "paper-rouge", "smoke"]


def test_actionlint_accepts_the_workflows() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is missing in CI: pip install -r requirements.txt installs it")
        pytest.skip("actionlint not installed (pip install -r requirements.txt)")
    proc = subprocess.run([actionlint, "-no-color", "-config-file", str(REPO / "ci" / "actionlint.yaml"),
                           *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path) -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint not installed")
    broken = tmp_path / "broken.yml"
    broken.write_text((REPO / "ci" / "smoke.yml").read_text().replace("runs-on: ubuntu-latest", "runs_on: x"))
    proc = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "runs-on" in proc.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_commands_are_the_readme_commands(workflow: Path) -> None:
    documented = _readme_commands()
    lines = _run_lines(workflow)
    assert lines
    missing = [line for line in lines if line not in documented]
    assert not missing, f"{workflow.name} runs commands the README does not document: {missing}"


def test_paper_workflows_select_target_rows() -> None:
    rows = load_registry(REPO / "results_registry.yaml", check_notebooks=False)
    for workflow in WORKFLOWS:
        for line in _run_lines(workflow):
            words = shlex.split(line)
            if "--rows" not in words:
                continue
            patterns = list(itertools.takewhile(lambda w: not w.startswith("--"), words[words.index("--rows") + 1:]))
            selected = [r for r in select_rows(rows, patterns) if r.role == "target"]
            assert selected, f"{workflow.name}: {patterns} select no target row"
            for pattern in patterns:
                assert select_rows(rows, [pattern]), f"{workflow.name}: {pattern} selects nothing"
