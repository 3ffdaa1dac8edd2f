"""Checker: every verdict can occur (failures included), seed aggregation, smoke profile, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r3f_utils.checker import aggregate, check, exit_code, format_table
from r3f_utils.cli import main
from r3f_utils.registry import DEFAULT_REGISTRY, load_registry
from r3f_utils.results import ResultRecord, write_results

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "toy_registry.yaml"


@pytest.fixture(scope="module")
def rows():
    return load_registry(TOY, check_notebooks=False)


def rec(row: str, seed: int = 1, profile: str = "paper", **metrics: float) -> ResultRecord:
    return ResultRecord(
        path=Path(f"/runs/{row}/seed-{seed}/results.json"),
        experiment=row,
        profile=profile,
        seed=seed,
        metrics=metrics,
        finished_at=f"2025-01-01T00:00:{seed:02d}",
    )


def verdicts(result, row: str, metric: str = "accuracy"):
    (v,) = [v for v in result.verdicts if v.row == row and v.metric == metric]
    return v


def test_aggregations():
    values = [3.0, 1.0, 2.0, 10.0]
    assert aggregate(values, "max_of_10") == 10.0
    assert aggregate(values, "median_of_10") == 2.5
    assert aggregate(values, "mean_of_5") == 4.0
    assert aggregate([7.0], "single") == 7.0


@pytest.mark.parametrize(
    ("value", "verdict", "failed"),
    [(50.4, "reproduced", False), (49.6, "reproduced", False), (51.0, "above", False), (49.0, "below", True)],
)
def test_paper_verdicts_and_failure_direction(rows, value, verdict, failed):
    result = check(rows, [rec("toy.single", accuracy=value)], "paper")
    v = verdicts(result, "toy.single")
    assert (v.verdict, v.failed) == (verdict, failed)
    assert v.delta == pytest.approx(value - 50.0)
    assert exit_code(result) == int(failed)


def test_lower_is_better_metrics_fail_above():
    table1 = [r for r in load_registry(DEFAULT_REGISTRY, check_notebooks=False) if r.id == "table1.r3f_r4f"]
    ok = check(table1, [rec("table1.r3f_r4f", forward_passes=2, backward_passes=1, cost_xfp=4)])
    assert {v.verdict for v in ok.verdicts} == {"reproduced"} and exit_code(ok) == 0
    bad = check(table1, [rec("table1.r3f_r4f", forward_passes=3, backward_passes=1, cost_xfp=4)])
    v = verdicts(bad, "table1.r3f_r4f", "forward_passes")
    assert (v.verdict, v.failed) == ("above", True) and exit_code(bad) == 1


def test_shared_experiment_feeds_max_and_median_rows(rows):
    records = [rec("toy.multi", seed, accuracy=50.0 + seed - 1) for seed in range(1, 11)]  # 50..59
    result = check(rows, records, "paper")
    best, median = verdicts(result, "toy.best"), verdicts(result, "toy.median")
    assert (best.reproduced, best.verdict, best.n_seeds) == (59.0, "reproduced", 10)
    assert (median.reproduced, median.verdict) == (54.5, "reproduced")
    # a result recorded under one member row id also counts for the whole experiment
    again = check(rows, [rec("toy.best", s, accuracy=50.0 + s - 1) for s in range(1, 11)], "paper")
    assert verdicts(again, "toy.median").verdict == "reproduced"


def test_too_few_seeds_says_so(rows):
    result = check(rows, [rec("toy.multi", s, accuracy=60.0) for s in (1, 2, 3)], "paper")
    v = verdicts(result, "toy.best")
    assert (v.verdict, v.failed, v.reproduced) == ("missing", False, 60.0)
    assert "only 3 of 10 seeds for max_of_10" in v.reason


def test_missing_runs_and_reported_rows(rows):
    result = check(rows, [], "paper")
    assert verdicts(result, "toy.single").reason == "no paper runs"
    assert verdicts(result, "toy.reported", "f1").verdict == "missing"
    assert "reported row" in verdicts(result, "toy.reported", "f1").reason
    assert exit_code(result) == 0
    assert all(v.row != "toy.reported" for v in check(rows, [], include_reported=False).verdicts)


@pytest.mark.parametrize("record", [rec("toy.single", f1=1.0), rec("toy.single", accuracy=float("nan"))])
def test_invalid_verdict(rows, record):
    result = check(rows, [record], "paper")
    v = verdicts(result, "toy.single")
    assert (v.verdict, v.failed) == ("invalid", True) and exit_code(result) == 1


def test_smoke_profile_checks_pinned_expectations_not_the_paper(rows):
    ok = check(rows, [rec("toy.single", profile="smoke", accuracy=50.005)], "smoke")
    v = verdicts(ok, "toy.single")
    assert (v.verdict, v.expected, v.tolerance) == ("reproduced", 50.0, 0.01) and "no paper claim" in v.reason
    drift = check(rows, [rec("toy.single", profile="smoke", accuracy=49.0)], "smoke")
    assert (verdicts(drift, "toy.single").verdict, exit_code(drift)) == ("below", 1)
    up = check(rows, [rec("toy.single", profile="smoke", accuracy=51.0)], "smoke")
    assert (verdicts(up, "toy.single").verdict, exit_code(up)) == ("above", 1)  # any drift fails in smoke
    unpinned = check(rows, [rec("toy.multi", profile="smoke", accuracy=50.0)], "smoke")
    v = verdicts(unpinned, "toy.best")
    assert (v.verdict, v.reason, v.failed) == ("missing", "no smoke expectation pinned", False)


def test_other_profile_duplicates_and_unknown_rows(rows):
    records = [
        rec("toy.single", profile="smoke", accuracy=50.0),
        rec("toy.single", 1, accuracy=40.0),
        rec("toy.single", 1, accuracy=50.0),
        rec("nope.row", accuracy=1.0),
    ]
    object.__setattr__(records[2], "finished_at", "2030-01-01T00:00:00")  # the later run wins
    result = check(rows, records, "paper")
    assert verdicts(result, "toy.single").reproduced == 50.0
    assert any("also in" in w for w in result.warnings)
    assert any("experiment 'nope.row' is not in the registry" in w for w in result.warnings)


def test_format_table(rows):
    text = format_table(check(rows, [rec("toy.single", accuracy=45.0)], "paper"))
    header = text.splitlines()[0].split()
    assert header[:7] == ["row", "metric", "paper", "reproduced", "delta", "tol", "verdict"]
    assert "BELOW" in text and "1 failed" in text


def _write(root: Path, row: str, value: float, seed: int = 1, profile: str = "paper") -> None:
    write_results(
        root / row / f"seed-{seed}",
        experiment=row,
        profile=profile,
        seed=seed,
        metrics={"accuracy": value},
        parameters={},
    )


@pytest.mark.parametrize(("value", "code"), [(50.0, 0), (55.0, 0), (45.0, 1)])
def test_cli_exit_codes(tmp_path, capsys, value, code):
    _write(tmp_path, "toy.single", value)
    assert main(["check", "--results", str(tmp_path), "--registry", str(TOY)]) == code
    assert "toy.single" in capsys.readouterr().out


def test_cli_exit_2_on_unusable_input(tmp_path, capsys):
    assert main(["check", "--results", str(tmp_path / "nope"), "--registry", str(TOY)]) == 2
    assert main(["check", "--results", str(tmp_path), "--registry", str(TOY)]) == 2  # no results.json
    _write(tmp_path, "toy.single", 50.0, profile="smoke")
    assert main(["check", "--results", str(tmp_path), "--registry", str(TOY), "--profile", "paper"]) == 2  # smoke only
    assert "found profile smoke" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text(json.dumps({"schema_version": 2}))
    assert main(["check", "--results", str(tmp_path), "--registry", str(TOY), "--profile", "smoke"]) == 2
    bad_registry = TOY.parent / "bad_unknown_metric.yaml"
    assert main(["check", "--results", str(tmp_path), "--registry", str(bad_registry)]) == 2
