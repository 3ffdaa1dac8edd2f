"""results.json: round trip, atomic never-overwrite writes, rejected values, malformed files."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from r3f_utils.results import SCHEMA_VERSION, ResultsError, read_results, write_results

ARGS = dict(row="table4.cnn_dailymail.bart_r3f", profile="smoke", seed=3, parameters={"lr": 3e-5, "beams": 4})


def test_round_trip(tmp_path):
    started = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    path = write_results(
        tmp_path / "run",
        metrics={"rouge1": 44.38, "rougeLsum": 41},
        started_at=started,
        extra={"train_seconds": 1.5},
        **ARGS,
    )
    assert path == tmp_path / "run" / "results.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["started_at"] == "2025-01-02T03:04:05+00:00" and data["finished_at"]
    assert {"python", "r3f-repro", "torch", "transformers", "datasets"} <= set(data["versions"])
    assert "git_commit" in data
    (record,) = read_results(tmp_path)
    assert record.row == ARGS["row"] and record.experiment == ARGS["row"] and record.seed == 3
    assert record.metrics == {"rouge1": 44.38, "rougeLsum": 41.0}
    assert record.parameters == ARGS["parameters"] and record.extra == {"train_seconds": 1.5}
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["results.json"]  # no temp file left


def test_never_overwrites(tmp_path):
    write_results(tmp_path, metrics={"accuracy": 1.0}, **ARGS)
    with pytest.raises(ResultsError, match="already exists"):
        write_results(tmp_path, metrics={"accuracy": 2.0}, **ARGS)
    assert read_results(tmp_path)[0].metrics == {"accuracy": 1.0}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "0.5", None, True])
def test_rejects_non_finite_or_non_numeric(tmp_path, value):
    with pytest.raises(ResultsError, match="metric 'accuracy'"):
        write_results(tmp_path, metrics={"accuracy": value}, **ARGS)
    assert not (tmp_path / "results.json").exists()


def test_rejects_unknown_metric_name(tmp_path):
    with pytest.raises(ResultsError, match="did you mean 'accuracy_matched'"):
        write_results(tmp_path, metrics={"accuracy_mached": 1.0}, **ARGS)


def test_rejects_bad_profile_and_unserialisable_parameters(tmp_path):
    with pytest.raises(ResultsError, match="profile"):
        write_results(tmp_path, **{**ARGS, "profile": "full"}, metrics={"accuracy": 1.0})
    with pytest.raises(ResultsError, match="JSON"):
        write_results(tmp_path, **{**ARGS, "parameters": {"x": object()}}, metrics={"accuracy": 1.0})


def test_read_results_is_recursive_and_sorted(tmp_path):
    for seed in (2, 1):
        write_results(tmp_path / "exp" / f"seed-{seed}", **{**ARGS, "seed": seed}, metrics={"accuracy": seed})
    assert [r.seed for r in read_results(tmp_path)] == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON"),
        ("[]", "expected a JSON object"),
        ('{"schema_version": 99}', "schema_version 99"),
        (
            '{"schema_version": 1, "row": "x", "profile": "smoke", "seed": 1, "parameters": {}}',
            "missing key 'metrics'",
        ),
        (
            '{"schema_version": 1, "row": "x", "profile": "smoke", "seed": "1", "metrics": {},'
            ' "parameters": {}}',
            "key 'seed'",
        ),
        (
            '{"schema_version": 1, "row": "x", "profile": "smoke", "seed": 1,'
            ' "metrics": {"accuracy": "high"}, "parameters": {}}',
            "metric 'accuracy'",
        ),
    ],
)
def test_malformed_file_names_the_file(tmp_path, content, message):
    bad = tmp_path / "a" / "results.json"
    bad.parent.mkdir()
    bad.write_text(content)
    with pytest.raises(ResultsError, match=message) as info:
        read_results(tmp_path)
    assert str(bad) in str(info.value)


def test_missing_folder(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        read_results(tmp_path / "nope")
