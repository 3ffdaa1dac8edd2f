"""Notebook parameters a user can read (issue 19 C): typed for `papermill --help-notebook`, `report_to` a
parameter instead of hard-coded off, and a progress line with an ETA in long runs."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import papermill
import pytest

from r3f_utils.experiments.checkpoints import checkpointed_run_arguments
from r3f_utils.experiments.progress import ProgressLine, resolve_report_to
from r3f_utils.package_data import notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob("*.ipynb"))
_ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*[:=]")


def _parameter_lines(path) -> list[str]:
    import nbformat

    cell = next(c for c in nbformat.read(path, 4).cells if "parameters" in c.metadata.get("tags", []))
    return [m.group(1) for line in cell.source.splitlines() if (m := _ASSIGNMENT.match(line))]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_parameter_carries_a_type(notebook):
    params = papermill.inspect_notebook(str(notebook))
    assert set(_parameter_lines(notebook)) == set(params), "a parameters-cell line papermill cannot parse"
    untyped = [name for name, spec in params.items() if spec["inferred_type_name"] in ("None", None)]
    assert not untyped, f"{notebook.name}: parameters without a type hint: {untyped}"


@pytest.mark.parametrize("name", ["glue.ipynb", "xnli.ipynb", "summarization.ipynb"])
def test_report_to_is_a_notebook_parameter(name):
    spec = papermill.inspect_notebook(str(notebooks_dir() / name))["report_to"]
    assert spec["default"] == '"none"' and spec["inferred_type_name"] == "str"


def test_report_to_resolves_and_refuses_what_is_not_installed(monkeypatch):
    assert resolve_report_to("none") == [] and resolve_report_to(None) == [] and resolve_report_to("all") == ["all"]
    monkeypatch.setattr("transformers.integrations.get_available_reporting_integrations", lambda: ["tensorboard"])
    assert resolve_report_to("tensorboard") == ["tensorboard"]
    with pytest.raises(ValueError, match=r"wandb is not installed \(pip install wandb\)"):
        resolve_report_to("tensorboard,wandb")
    with pytest.raises(ValueError, match="unknown integration 'tensorbord'"):
        resolve_report_to("tensorbord")
    args = checkpointed_run_arguments(__import__("pathlib").Path("x"), eval_steps=5, seed=1, fp16=False, bf16=False,
                                      report_to="tensorboard")
    assert args["report_to"] == ["tensorboard"]


def test_progress_line_prints_steps_and_an_eta_every_interval():
    now = [0.0]
    out = io.StringIO()
    line = ProgressLine(every_s=60, stream=out, clock=lambda: now[0])
    state = SimpleNamespace(global_step=0, max_steps=100)
    line.on_train_begin(None, state, None)
    for step in range(1, 101):
        now[0] += 2.0  # 2 s per step
        state.global_step = step
        if step == 10:
            line.on_log(None, state, None, logs={"loss": 0.5})
        line.on_step_end(None, state, None)
    line.on_train_end(None, state, None)
    lines = out.getvalue().splitlines()
    assert lines[0] == "step 30/100 (30%) · loss 0.5 · 1.0 min elapsed · ETA 2.3 min"
    assert len(lines) == 4 and lines[-1] == "step 100/100 · done in 3.3 min"


def test_progress_line_is_silent_for_a_run_of_seconds():
    now = [0.0]
    out = io.StringIO()
    line = ProgressLine(every_s=60, stream=out, clock=lambda: now[0])
    state = SimpleNamespace(global_step=0, max_steps=20)
    line.on_train_begin(None, state, None)
    for step in range(1, 21):
        now[0] += 0.1
        state.global_step = step
        line.on_step_end(None, state, None)
    line.on_train_end(None, state, None)
    assert out.getvalue() == ""
