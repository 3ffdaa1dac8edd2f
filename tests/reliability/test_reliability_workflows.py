"""Every `uses:` of the GitHub Actions workflows names a known action at a known major version, so a typo such as
`actions/chekout@v5` (which actionlint lets through: it cannot look actions up offline) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*(REPO / "ci").glob("*.yml"), *(REPO / ".github" / "workflows").glob("*.yml")])
# action -> the versions this project may use (update both when moving to a new release)
KNOWN_ACTIONS: dict[str, tuple[str, ...]] = {
    "actions/checkout": ("v4", "v5"),
    "actions/upload-artifact": ("v4", "v5", "v6"),
    "actions/download-artifact": ("v4", "v5", "v6"),
    "actions/setup-python": ("v5", "v6"),
    "actions/cache": ("v4",),
}


def unknown_actions(workflow: dict) -> list[str]:
    """The ``uses:`` of a parsed workflow that are not ``<known action>@<known version>`` (local ``./`` actions
    and ``docker://`` images are not checked)."""
    problems = []
    for name, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            uses = step.get("uses")
            if not uses or uses.startswith(("./", "docker://")):
                continue
            action, _, version = uses.partition("@")
            if action not in KNOWN_ACTIONS:
                problems.append(f"job {name}: {uses}: unknown action (known: {', '.join(KNOWN_ACTIONS)})")
            elif version not in KNOWN_ACTIONS[action]:
                problems.append(f"job {name}: {uses}: {action} at {version or 'no version'} (known: "
                                f"{', '.join(KNOWN_ACTIONS[action])})")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_uses_only_known_actions_and_versions(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert any("uses" in s for job in workflow["jobs"].values() for s in job.get("steps") or [])
    assert unknown_actions(workflow) == []


@pytest.mark.parametrize(("uses", "problem"), [("actions/chekout@v5", "unknown action"),
                                               ("actions/checkout@v99", "actions/checkout at v99"),
                                               ("actions/checkout", "at no version")])
def test_a_typo_or_unknown_version_is_caught(uses: str, problem: str) -> None:
    workflow = yaml.safe_load((REPO / "ci" / "smoke.yml").read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                step["uses"] = uses
    (found,) = unknown_actions(workflow)
    assert problem in found
