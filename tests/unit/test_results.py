"""results.json: round trip, atomic never-overwrite writes, rejected values, malformed files."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from r3f_utils.results import SCHEMA_VERSION, ResultsError, read_results, write_results

ARGS = dict(experiment="table4.cnn_dailymail.bart_r3f", profile="smoke", seed=3, parameters={"lr": 3e-5, "beams": 4})


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
    assert record.experiment == ARGS["experiment"] and record.seed == 3
    assert "row" not in data and list(data)[:2] == ["schema_version", "experiment"]  # schema 2: one key
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
            '{"schema_version": 2, "experiment": "x", "profile": "smoke", "seed": 1, "parameters": {}}',
            "missing key 'metrics'",
        ),
        (
            '{"schema_version": 2, "row": "x", "profile": "smoke", "seed": 1, "metrics": {}, "parameters": {}}',
            "missing key 'experiment'",
        ),
        (
            '{"schema_version": 2, "experiment": "x", "profile": "smoke", "seed": "1", "metrics": {},'
            ' "parameters": {}}',
            "key 'seed'",
        ),
        (
            '{"schema_version": 2, "experiment": "x", "profile": "smoke", "seed": 1,'
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


def _schema_1(path, **changes):
    """A results.json as schema 1 wrote it: `row` beside `experiment` (the same key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schema_version": 1, "row": "table2.rte.roberta_large_r3f", "experiment": "table2.rte.roberta_large_r3f",
            "profile": "smoke", "seed": 1, "metrics": {"accuracy": 61.0}, "parameters": {"task": "rte"},
            "versions": {}, "git_commit": None, "started_at": None, "finished_at": "2026-01-01T00:00:00+00:00",
            "extra": {"train": {"global_step": 3}}, **changes}
    path.write_text(json.dumps(data))
    return data


def test_a_schema_1_file_is_refused_with_what_changed_and_the_converter(tmp_path):
    _schema_1(tmp_path / "run" / "results.json")
    with pytest.raises(ResultsError, match=r"schema_version 1 is no longer read: schema 2 keeps one key, `experiment` "
                                           r".*convert with `python -m r3f_utils\.migrate .*run` \(docs/registry\.md"
                                           r"#migration-from-schema-2\)"):
        read_results(tmp_path)


def test_the_converter_turns_schema_1_into_2_and_changes_nothing_else(tmp_path, capsys):
    from r3f_utils.migrate import main

    old = _schema_1(tmp_path / "a" / "seed-1" / "results.json")
    _schema_1(tmp_path / "b" / "seed-1" / "results.json", experiment=None)  # only `row`
    write_results(tmp_path / "c" / "seed-1", metrics={"accuracy": 1.0}, **ARGS)  # schema 2 already: left alone
    before_c = (tmp_path / "c" / "seed-1" / "results.json").read_bytes()
    assert main([str(tmp_path)]) == 0
    assert "2 converted to schema 2, 1 already schema 2" in capsys.readouterr().out
    converted = json.loads((tmp_path / "a" / "seed-1" / "results.json").read_text())
    assert converted == {k: v for k, v in {**old, "schema_version": 2}.items() if k != "row"}
    assert list(converted)[:2] == ["schema_version", "experiment"]
    assert (tmp_path / "c" / "seed-1" / "results.json").read_bytes() == before_c
    records = read_results(tmp_path)
    assert [r.experiment for r in records] == ["table2.rte.roberta_large_r3f"] * 2 + [ARGS["experiment"]]
    assert records[0].metrics == {"accuracy": 61.0} and records[0].extra == old["extra"]
    assert main([str(tmp_path)]) == 0 and "0 converted" in capsys.readouterr().out  # idempotent


def test_the_converter_refuses_what_it_cannot_convert_naming_the_file(tmp_path, capsys):
    from r3f_utils.migrate import main

    bad = tmp_path / "a" / "results.json"
    _schema_1(bad, row="table2.rte.roberta_large_r3f", experiment="table2.rte.roberta_large_r4f")
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: `row` 'table2.rte.roberta_large_r3f' and `experiment` 'table2.rte.roberta_large_r4f' differ" in err
    assert json.loads(bad.read_text())["schema_version"] == 1  # untouched
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text('{"schema_version": 7}')
    assert main([str(tmp_path / "b")]) == 1
    assert "schema_version 7: only schema 1 converts to 2" in capsys.readouterr().err
    assert main([str(tmp_path / "nope")]) == 1 and "does not exist" in capsys.readouterr().err
