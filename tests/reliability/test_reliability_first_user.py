"""The faults a first-time user met that were not clear errors (issue 19, section D): each now ends in one clear
message (exit 2 from the CLI, 130 after Ctrl-C, or a named exception) and loses nothing."""

from __future__ import annotations

import builtins
import errno
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from r3f_utils.cli import main
from r3f_utils.registry import RegistryError, load_registry, select_rows
from r3f_utils.results import write_results
from r3f_utils.runner import plan_jobs, run_jobs, write_batch_manifest

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "fixtures" / "registry" / "toy_registry.yaml"
TOY_NOTEBOOK = REPO / "tests" / "notebooks_for_tests" / "toy.ipynb"


def _registry_copy(tmp_path: Path, notebook: Path | None = None, edit=None) -> Path:
    """The toy registry in ``tmp_path``, its notebook paths absolute (or ``notebook``), edited by ``edit``."""
    text = TOY.read_text(encoding="utf-8").replace("../../notebooks_for_tests/toy.ipynb", str(notebook or TOY_NOTEBOOK))
    if edit is not None:
        changed = edit(text)
        assert changed != text, "the edit did not apply"
        text = changed
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _notebook_with(tmp_path: Path, name: str, *, parameters: str = "", body: str | None = None) -> Path:
    """The toy notebook with extra lines in its parameters cell and (``body``) its `if fail:` cell replaced."""
    nb = json.loads(TOY_NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if "parameters" in cell["metadata"].get("tags", []) and parameters:
            cell["source"] = source + "\n" + parameters
        if body is not None and source.startswith("if fail:"):
            cell["source"] = body
    path = tmp_path / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _toy_batch(tmp_path: Path, registry: Path = TOY, parameters: dict | None = None) -> Path:
    rows = load_registry(registry, check_notebooks=False)
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), registry)
    batch = tmp_path / "runs" / "20260101T000000Z"
    batch.mkdir(parents=True)
    write_batch_manifest(batch, jobs, seeds=None, overrides={})
    write_results(batch / "toy.single" / "seed-1", experiment="toy.single", profile="smoke", seed=1,
                  metrics={"accuracy": 50.0},
                  parameters=parameters or {"value": 50.0, "step": 2.0, "metric": "accuracy"})
    return batch


# ---- 1. --set with a value that is not YAML ----------------------------------------------------------------

@pytest.mark.parametrize("command", ["reproduce", "train"])
def test_set_value_that_is_not_yaml_is_a_clear_error(tmp_path, capsys, command) -> None:
    args = [command, "--registry", str(TOY), "--set", "eps=[1"]
    args += ["--rows", "toy.single", "--out", str(tmp_path / "runs")] if command == "reproduce" else ["glue"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--set 'eps=[1': the value '[1' is not valid YAML" in err and "quote a string" in err
    assert not (tmp_path / "runs").exists()


# ---- 2. Ctrl-C during a batch ------------------------------------------------------------------------------

def test_ctrl_c_prints_one_line_exits_130_and_the_batch_resumes(tmp_path) -> None:
    hold = tmp_path / "hold"  # the notebook waits while this file exists
    hold.touch()
    notebook = _notebook_with(tmp_path, "waits.ipynb", body=(
        f"import os, time\nwhile os.path.exists({str(hold)!r}):\n    time.sleep(0.05)"))
    registry = _registry_copy(tmp_path, notebook)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "r3f_utils", "reproduce", "--registry", str(registry), "--rows", "toy.single",
               "--seeds", "2", "--jobs", "2", "--out", str(tmp_path / "runs")]
    # a terminal's Ctrl-C sends SIGINT to the whole foreground process group: the batch's own session here
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(tmp_path.glob("runs/*/toy.single/seed-*/notebook.ipynb"))) < 2:
        time.sleep(0.1)
    time.sleep(1.0)  # the kernels are in their waiting cell
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert out == ""  # nothing on stdout: no check table of a half batch
    (batch,) = (tmp_path / "runs").iterdir()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    assert f"interrupted; resume with: python -m r3f_utils reproduce --resume {batch}\n" in err
    assert [line for line in err.splitlines() if "interrupted" in line] == [
        f"interrupted; resume with: python -m r3f_utils reproduce --resume {batch}"]
    hold.unlink()
    resumed = subprocess.run([sys.executable, "-m", "r3f_utils", "reproduce", "--resume", str(batch),
                              "--registry", str(registry), "--jobs", "1"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "2 ok/skipped, 0 failed" in resumed.stderr, resumed.stderr  # (exit 1: 2 seeds of a 1-seed row)
    assert all((batch / "toy.single" / f"seed-{k}" / "results.json").is_file() for k in (1, 2))


# ---- 3. --launcher slurm without submitit or without SLURM ---------------------------------------------------

@pytest.mark.parametrize("missing", ["submitit", "sbatch"])
def test_slurm_launcher_unavailable_is_a_clear_error_without_a_batch_folder(tmp_path, monkeypatch, capsys,
                                                                            missing) -> None:
    if missing == "submitit":
        monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit fails as when not installed
    else:
        if importlib.util.find_spec("submitit") is None:  # (not imported here: its logging would bind to capsys)
            pytest.skip("submitit not installed")
        monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    code = main(["reproduce", "--registry", str(TOY), "--rows", "toy.single", "--launcher", "slurm",
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    if missing == "submitit":
        assert "needs submitit, which is not installed: pip install 'r3f-repro[slurm]'" in err
    else:
        assert "sbatch and srun not found on the PATH" in err and "--slurm-executor local" in err
    assert not (tmp_path / "runs").exists()  # no empty batch folder left behind


# ---- 4. --resume with rows the batch never ran -----------------------------------------------------------

def test_resume_with_rows_not_in_the_batch_is_refused(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    assert main(["reproduce", "--registry", str(TOY), "--resume", str(batch), "--rows", "toy.fails"]) == 2
    err = capsys.readouterr().err
    assert "toy.fails is not in this batch (it ran toy.single)" in err and "without --resume" in err
    assert not (batch / "toy.fails").exists()


# ---- 5. a full disk during a run -----------------------------------------------------------------------------

class _HalfWriter:
    """A file opened for writing on a full disk: half of the first write lands, then ENOSPC."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _disk_full(monkeypatch, under: Path) -> None:
    """Every write of this process to a file under ``under`` fails with ENOSPC (python files: after half)."""
    real_open, real_write, real_builtin_open = os.open, os.write, builtins.open
    full: set[int] = set()

    def fake_os_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).startswith(str(under)) and flags & (os.O_WRONLY | os.O_RDWR):
            full.add(fd)
        return fd

    def fake_os_write(fd, data):
        if fd in full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_builtin_open(file, mode, *args, **kwargs)
        if any(c in mode for c in "wax+") and str(file).startswith(str(under)):
            return _HalfWriter(f)
        return f

    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "write", fake_os_write)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


def test_full_disk_during_runs_records_failures_and_the_batch_stays_resumable(tmp_path, monkeypatch) -> None:
    rows = load_registry(TOY, check_notebooks=False)
    jobs = plan_jobs(select_rows(rows, ["toy.single"]), TOY, seeds=2)
    batch = tmp_path / "runs" / "20260101T000000Z"
    batch.mkdir(parents=True)
    write_batch_manifest(batch, jobs, seeds=2, overrides={})
    _disk_full(monkeypatch, batch)
    outcomes = run_jobs(jobs, batch, show_progress=False)  # the batch goes on: every run fails, none aborts it
    monkeypatch.undo()
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all("No space left on device" in o.error and "free disk space" in o.error for o in outcomes)
    for outcome in outcomes:
        notebook, error = outcome.run_dir / "notebook.ipynb", outcome.run_dir / "error.txt"
        if notebook.exists():
            json.loads(notebook.read_text(encoding="utf-8"))  # never a truncated notebook
        assert not error.exists() or error.read_text(encoding="utf-8").strip()  # never a 0-byte error.txt
        assert not [p.name for p in outcome.run_dir.iterdir() if p.name.endswith(".tmp")]
    resumed = run_jobs(jobs, batch, resume=True, show_progress=False)  # disk freed: resume finishes the batch
    assert [o.status for o in resumed] == ["ok", "ok"]


# ---- 6. report --out an existing file ---------------------------------------------------------------------------

def test_report_out_an_existing_file_exits_2_and_keeps_it(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    existing = tmp_path / "report.html"
    existing.write_text("mine")
    assert main(["report", "--registry", str(TOY), "--results", str(batch), "--out", str(existing)]) == 2
    assert "is a file, not a folder: name a folder" in capsys.readouterr().err
    assert existing.read_text() == "mine"


# ---- 7. pin from a batch whose batch.json is gone ------------------------------------------------------------------

def test_pin_refuses_a_batch_whose_batch_json_is_gone(tmp_path, capsys) -> None:
    notebook = _notebook_with(tmp_path, "budget.ipynb", parameters="max_updates = 10  # training budget")
    registry = _registry_copy(tmp_path, notebook)
    before = registry.read_text()
    batch = _toy_batch(tmp_path, registry, parameters={"value": 50.0, "step": 2.0, "metric": "accuracy",
                                                       "max_updates": 5})  # as run with --set max_updates=5
    (batch / "batch.json").unlink()  # nothing left to show how the batch ran: refused, whatever its parameters
    assert main(["pin", "--registry", str(registry), "--results", str(batch), "--rows", "toy.single"]) == 2
    err = capsys.readouterr().err
    assert f"{batch} holds no batch.json" in err and "re-run `reproduce --rows toy.single` (without --set)" in err
    assert registry.read_text() == before
    shutil.rmtree(batch.parent)
    batch = _toy_batch(tmp_path, registry, parameters={"value": 50.0, "step": 2.0, "metric": "accuracy",
                                                       "max_updates": 10})  # a normal batch pins
    assert main(["pin", "--registry", str(registry), "--results", str(batch), "--rows", "toy.single"]) == 0
    assert "pinned 1 rows" in capsys.readouterr().out


# ---- 8. check --results pointing at a notebook ---------------------------------------------------------------------

def test_check_results_pointing_at_a_notebook_says_so(tmp_path, capsys) -> None:
    batch = _toy_batch(tmp_path)
    notebook = batch / "toy.single" / "seed-1" / "notebook.ipynb"
    shutil.copy(TOY_NOTEBOOK, notebook)
    assert main(["check", "--registry", str(TOY), "--results", str(notebook), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert f"{notebook}: is a notebook, not a results folder" in err and f"--results {notebook.parent}" in err


# ---- 9. a quoted schema_version, a folder as notebook --------------------------------------------------------------

def test_quoted_schema_version_says_to_drop_the_quotes(tmp_path, capsys) -> None:
    registry = _registry_copy(tmp_path, edit=lambda t: t.replace("schema_version: 3", "schema_version: '3'"))
    with pytest.raises(RegistryError, match=r"schema_version is the string '3', not a number: write it without "
                                            r"quotes \(schema_version: 3\)"):
        load_registry(registry, check_notebooks=False)
    assert main(["validate", "--registry", str(registry)]) == 1


def test_notebook_that_is_a_folder_says_so(tmp_path, capsys) -> None:
    registry = _registry_copy(tmp_path, notebook=tmp_path)  # `notebook: <a folder>`
    assert main(["validate", "--registry", str(registry)]) == 1
    assert "is a folder, not a notebook file: name the .ipynb in it" in capsys.readouterr().err
    assert main(["reproduce", "--registry", str(registry), "--rows", "toy.single", "--out", str(tmp_path / "r")]) == 2
    assert f"notebook {tmp_path} is a folder, not a notebook file" in capsys.readouterr().err


# ---- 10. one row of a shared experiment with a missing notebook or an undeclared parameter ---------------------------

_BEST = "aggregation: max_of_10\n    tolerance: 0.5\n    notebook: " + str(TOY_NOTEBOOK)
_MEDIAN = ("aggregation: median_of_10\n    tolerance: 0.5\n    notebook: " + str(TOY_NOTEBOOK)
           + "\n    parameters: {value: 50.0, step: 1.0")


@pytest.mark.parametrize(("edit", "named"), [
    (lambda t: t.replace(_BEST, _BEST.replace("toy.ipynb", "gone.ipynb")), "gone.ipynb' in row 'toy.best'"),
    (lambda t: t.replace(_MEDIAN, _MEDIAN + ", stpe: 2.0"), "parameter 'stpe' = 2.0 here, absent in row 'toy.best'"),
], ids=["missing-notebook", "undeclared-parameter"])
def test_one_row_of_a_shared_experiment_differing_names_the_file_or_parameter(tmp_path, capsys, edit, named) -> None:
    registry = _registry_copy(tmp_path, edit=edit)
    assert main(["validate", "--registry", str(registry)]) == 1
    err = capsys.readouterr().err
    assert named in err and "shares experiment 'toy.multi'" in err


# ---- 11. symmetric_kl on integer, NaN/inf and empty logits ----------------------------------------------------------

def test_symmetric_kl_refuses_integer_non_finite_and_empty_logits() -> None:
    from r3f_utils.methods.r3f import r3f_classification_loss, symmetric_kl

    good = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"noised_logits are torch.int64, not floating point"):
        symmetric_kl(torch.ones(4, 3, dtype=torch.long), good)
    bad = good.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"symmetric_kl: noised_logits contain NaN or inf"):
        symmetric_kl(bad, good)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"symmetric_kl: clean_logits contain NaN or inf"):
        symmetric_kl(good, bad)
    with pytest.raises(ValueError, match=r"empty logits \(shape \(0, 3\)\)"):
        symmetric_kl(torch.empty(0, 3), torch.empty(0, 3))
    assert torch.isfinite(symmetric_kl(good, good + 0.1))
    # in training the loss guard (NonFiniteLossError, naming the step) stays the one to stop a diverged run
    loss = r3f_classification_loss(good, bad, torch.zeros(4, dtype=torch.long), r3f_lambda=1.0)
    assert not torch.isfinite(loss.loss)


# ---- 12. probe_encoder's inputs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_probe():
    from transformers import DataCollatorWithPadding

    from r3f_utils.tiny_models import build_tiny_model

    texts = ["a good film", "a bad film", "great acting", "dull plot", "fine", "awful"]
    model, tokenizer = build_tiny_model("tiny-roberta", texts=texts, num_labels=2, seed=0)
    examples = [{**tokenizer(t), "label": i % 2} for i, t in enumerate(texts)]
    return model, examples, DataCollatorWithPadding(tokenizer)


def test_probe_encoder_accepts_a_bare_encoder(tiny_probe) -> None:
    from r3f_utils.methods.probing import ProbeConfig, probe_encoder

    model, examples, collate = tiny_probe
    result = probe_encoder(model.base_model, examples, examples, collate, num_labels=2, metrics=["accuracy"],
                           cfg=ProbeConfig(epochs=1))
    assert 0 <= result.metrics["accuracy"] <= 100 and result.num_train == len(examples)


@pytest.mark.parametrize(("change", "message"), [
    (lambda ex: [{**e, "label": 2} if i == 3 else e for i, e in enumerate(ex)],
     r"train example 3 has label 2, outside 0..1 \(num_labels=2\)"),
    (lambda ex: [{k: v for k, v in e.items() if k != "label"} for e in ex],
     r"train example 0 has no 'label'"),
], ids=["label-out-of-range", "no-label"])
def test_probe_encoder_checks_examples_before_any_training(tiny_probe, monkeypatch, change, message) -> None:
    import r3f_utils.methods.probing as probing

    model, examples, collate = tiny_probe
    monkeypatch.setattr(probing, "extract_features", lambda *a, **k: pytest.fail("ran before the check"))
    with pytest.raises(ValueError, match=message):
        probing.probe_encoder(model, change(examples), examples, collate, num_labels=2, metrics=["accuracy"])


@pytest.mark.parametrize("field", ["weight_decay", "dropout"])
def test_probe_config_refuses_a_non_number_naming_the_field(field) -> None:
    from r3f_utils.methods.probing import ProbeConfig

    with pytest.raises(ValueError, match=rf"probe parameter {field}='x' is invalid: a number"):
        ProbeConfig(**{field: "x"})


# ---- 13. an unknown model offline ---------------------------------------------------------------------------------

def test_unknown_model_offline_is_one_line_naming_it(monkeypatch) -> None:
    from r3f_utils.models import ModelNotAvailableError, load_model_and_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_model_and_tokenizer("FacebookAI/roberta-bogus", head="classification", num_labels=2)
    message = str(info.value)
    assert "\n" not in message and "'FacebookAI/roberta-bogus'" in message
    assert "not in the local cache" in message and "offline" in message
