"""What a first-time user meets on the command line (issue 19 A and C): the invoked name, --version, help for
every flag, one epilog, `reproduce --dry-run`, and `check`/`report` scoped to what the batch ran."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from r3f_utils import __version__
from r3f_utils.cli import build_parser, invoked_name, main
from r3f_utils.results import write_results

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# ---- C: names, version, help ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv0", "name"), [("/venv/bin/r3f-repro", "r3f-repro"),
                                             ("/x/r3f_utils/__main__.py", "python -m r3f_utils")])
def test_help_shows_the_invoked_name(monkeypatch, capsys, argv0, name):
    monkeypatch.setattr("sys.argv", [argv0, "--help"])
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ")
    assert f"  {name} reproduce" in out  # the examples use it too
    if name == "r3f-repro":
        assert "python -m r3f_utils" not in out
    assert invoked_name(argv0) == name


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser("r3f-repro").parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"r3f-repro {__version__}"


def test_every_flag_has_help():
    parser = build_parser("r3f-repro")
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, sub in _subparsers(parser).items() for a in sub._actions
               if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not missing, f"flags without help text: {missing}"


def test_train_profile_takes_choices(capsys):
    train = _subparsers(build_parser("r3f-repro"))["train"]
    action = next(a for a in train._actions if "--profile" in a.option_strings)
    assert set(action.choices) == {"smoke", "cpu", "paper"}
    with pytest.raises(SystemExit):
        train.parse_args(["glue", "--profile", "papr"])
    assert "invalid choice" in capsys.readouterr().err


def test_one_shared_epilog_not_repeated():
    parser = build_parser("r3f-repro")
    top = parser.format_help()
    assert top.count("exit codes of check") == 1
    subs = _subparsers(parser)
    ls_help = subs["ls"].format_help()
    assert "exit codes" not in ls_help  # not ls's business
    assert "r3f-repro ls --rows" in ls_help and "r3f-repro reproduce" not in ls_help  # only its own examples
    assert "r3f-repro --help" in ls_help
    assert subs["check"].format_help().count("exit codes of check") == 1


# ---- C: reproduce --dry-run ------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["reproduce", "--registry", str(TOY), "--rows", "toy.best", "--profile", "paper", "--out", str(out),
                 "--dry-run"])
    assert code == 0
    text = capsys.readouterr().out
    assert "toy.multi" in text and "toy.best" in text
    assert "paper profile: 1 rows, 1 experiments, 10 runs (10 to run)" in text
    assert "estimated GPU-hours" in text
    assert not out.exists()


def test_dry_run_gives_gpu_hours_of_the_paper_cost_model(capsys):
    from r3f_utils.describe import describe_row
    from r3f_utils.registry import DEFAULT_REGISTRY, load_registry

    assert main(["reproduce", "--rows", "table2a.rte.roberta_large_r3f", "--profile", "paper", "--dry-run"]) == 0
    text = capsys.readouterr().out
    row = next(r for r in load_registry(DEFAULT_REGISTRY, check_notebooks=False)
               if r.id == "table2a.rte.roberta_large_r3f")
    per_run = describe_row(row, "paper").gpu_hours
    assert f"{per_run:.2f}" in text
    assert f"estimated GPU-hours, runs to do: {10 * per_run:,.1f}" in text


# ---- A: check/report default to the batch ---------------------------------------------------------------------


def _batch(root: Path, experiments: list[str], profile: str = "smoke") -> Path:
    root.mkdir(parents=True)
    (root / "batch.json").write_text(json.dumps({"schema_version": 1, "profile": profile, "experiments": experiments,
                                                 "seeds": None, "overrides": {}}))
    for experiment in experiments:
        write_results(root / experiment / "seed-1", experiment=experiment, profile=profile, seed=1,
                      metrics={"accuracy": 50.0}, parameters={})
    return root


def test_check_defaults_to_the_batch_profile_and_rows(tmp_path, capsys):
    batch = _batch(tmp_path / "b", ["toy.single"])
    assert main(["check", "--results", str(batch), "--registry", str(TOY)]) == 0  # was: exit 2 (paper)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.out.splitlines() if ln.startswith("toy.")]
    assert [ln.split()[0] for ln in lines] == ["toy.single"]  # not toy.best/median/fails, all missing
    assert "profile smoke" in captured.out and "--all-rows" in captured.err
    assert main(["check", "--results", str(batch), "--registry", str(TOY), "--all-rows"]) == 0
    rows = {ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("toy.")}
    assert {"toy.single", "toy.best", "toy.median", "toy.fails"} <= rows


def test_check_of_a_folder_of_batches_takes_their_union(tmp_path, capsys):
    _batch(tmp_path / "runs" / "a", ["toy.single"])
    _batch(tmp_path / "runs" / "b", ["toy.fails"])
    assert main(["check", "--results", str(tmp_path / "runs"), "--registry", str(TOY)]) == 0
    rows = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("toy.")]
    assert rows == ["toy.single", "toy.fails"]


def test_check_of_a_folder_of_batches_refuses_one_without_batch_json(tmp_path, capsys):
    _batch(tmp_path / "runs" / "a", ["toy.single"])
    old = _batch(tmp_path / "runs" / "old", ["toy.fails"])
    (old / "batch.json").unlink()  # its runs would silently fall out of the manifests' scope
    assert main(["check", "--results", str(tmp_path / "runs"), "--registry", str(TOY)]) == 2
    err = capsys.readouterr().err
    assert f"{old} holds no batch.json, so it is no batch of `reproduce`" in err
    assert "re-run `reproduce` for its rows, point --results at one batch folder, or say what to look at with " \
           "--profile and --rows (or --all-rows)" in err
    assert main(["check", "--results", str(tmp_path / "runs"), "--registry", str(TOY), "--profile", "smoke",
                 "--rows", "toy.single", "toy.fails"]) == 0  # named: no default needed from the manifests
    rows = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("toy.")]
    assert rows == ["toy.single", "toy.fails"]


def test_report_defaults_to_the_batch_and_refuses_a_profile_it_lacks(tmp_path, capsys):
    batch = _batch(tmp_path / "b", ["toy.single"])
    assert main(["report", "--results", str(batch), "--registry", str(TOY), "--profile", "paper"]) == 2
    assert "no results.json of profile 'paper'" in capsys.readouterr().err
    assert not (batch / "report.html").exists()
    assert main(["report", "--results", str(batch), "--registry", str(TOY)]) == 0
    md = (batch / "report.md").read_text()
    assert "toy.single" in md and "toy.fails" not in md
