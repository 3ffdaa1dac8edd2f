"""Claims (the paper's ordering statements), the cpu profile, null figure metrics, --strict, and the
registry loader's refusals (duplicate keys, schema_version, tabs, BOM)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from r3f_utils.checker import check, exit_code, format_table, judge_claim
from r3f_utils.cli import main
from r3f_utils.registry import RegistryError, read_registry, select_claims, select_rows
from r3f_utils.results import ResultRecord, write_results
from r3f_utils.runner import plan_jobs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "claims_registry.yaml"


@pytest.fixture(scope="module")
def registry():
    return read_registry(FIXTURE, check_notebooks=False)


def rec(experiment: str, seed: int = 1, profile: str = "paper", **metrics: float) -> ResultRecord:
    return ResultRecord(path=Path(f"/runs/{experiment}/seed-{seed}/results.json"),
                        experiment=experiment, profile=profile, seed=seed, metrics=metrics,
                        finished_at=f"2025-01-01T00:00:{seed:02d}")


def ten_seeds(experiment: str, centre: float, profile: str = "paper") -> list[ResultRecord]:
    return [rec(experiment, s, profile, accuracy=centre + s - 5.5) for s in range(1, 11)]


def claim_verdict(result, claim_id: str):
    (c,) = [c for c in result.claims if c.claim == claim_id]
    return c


def test_registry_reads_claims_and_null_metrics(registry):
    assert [c.id for c in registry.claims] == ["figX.ours_beat_standard", "figX.best_of_ours_by_5"]
    ours = next(r for r in registry.rows if r.id == "figX.ours")
    assert ours.metrics == {"accuracy": None} and ours.numbers == {}
    assert registry.claims[0].experiments == ("figX.ours", "figX.other", "figX.standard")
    assert registry.claims[0].expected == {"smoke": "holds"}


def test_claim_holds_and_can_fail(registry):
    records = ten_seeds("figX.ours", 60) + ten_seeds("figX.other", 58) + ten_seeds("figX.standard", 50)
    result = check(registry.rows, records, "paper", claims=registry.claims)
    assert claim_verdict(result, "figX.ours_beat_standard").verdict == "holds"
    assert claim_verdict(result, "figX.best_of_ours_by_5").verdict == "holds"  # 60 >= 50 + 5
    assert exit_code(result) == 0
    # figure rows are measured, not judged against a number the paper does not print
    measured = [v for v in result.verdicts if v.row == "figX.ours"]
    assert [v.verdict for v in measured] == ["measured"] and not measured[0].failed
    assert measured[0].reproduced == pytest.approx(60.0)

    # standard catches up with one of ours: the 'each' claim fails, the margin claim too
    records = ten_seeds("figX.ours", 60) + ten_seeds("figX.other", 58) + ten_seeds("figX.standard", 58.5)
    result = check(registry.rows, records, "paper", claims=registry.claims)
    failed = claim_verdict(result, "figX.ours_beat_standard")
    assert failed.verdict == "fails" and failed.failed
    assert "figX.other:accuracy 58 vs figX.standard:accuracy 58.5" in failed.reason
    assert claim_verdict(result, "figX.best_of_ours_by_5").verdict == "fails"
    assert exit_code(result) == 1
    assert "claim figX.ours_beat_standard: FAILS" in format_table(result)


def test_claim_missing_and_invalid(registry):
    records = ten_seeds("figX.ours", 60) + ten_seeds("figX.standard", 50) + ten_seeds("figX.other", 58)[:3]
    result = check(registry.rows, records, "paper", claims=registry.claims)
    missing = claim_verdict(result, "figX.ours_beat_standard")
    assert missing.verdict == "missing" and not missing.failed
    assert "figX.other has 3 of 10 seeds" in missing.reason
    assert exit_code(result) == 0 and exit_code(result, strict=True) == 1

    records = [*ten_seeds("figX.ours", 60), *ten_seeds("figX.standard", 50), *ten_seeds("figX.other", 58)[1:],
               rec("figX.other", 1, accuracy=math.nan)]
    invalid = judge_claim(registry.claims[0], {e: [r for r in records if r.experiment == e]
                                               for e in registry.claims[0].experiments}, "paper", 10)
    assert invalid.verdict == "invalid" and invalid.failed and "nan" in invalid.reason


def test_smoke_claim_fails_only_when_the_pinned_verdict_changes(registry):
    smoke = [rec("figX.ours", s, "smoke", accuracy=v) for s, v in ((1, 40.0), (2, 41.0))]
    smoke += [rec("figX.other", 1, "smoke", accuracy=60.0), rec("figX.standard", 1, "smoke", accuracy=50.0)]
    result = check(registry.rows, smoke, "smoke", claims=registry.claims)
    pinned = claim_verdict(result, "figX.ours_beat_standard")  # pinned holds, now fails: drift
    assert (pinned.verdict, pinned.expected, pinned.failed) == ("fails", "holds", True)
    unpinned = claim_verdict(result, "figX.best_of_ours_by_5")  # no pin: reported, never failing
    assert unpinned.verdict == "holds" and not unpinned.failed


def test_cpu_profile_uses_its_own_section(registry, tmp_path):
    ours = next(r for r in registry.rows if r.id == "figX.ours")
    assert ours.parameters_for("cpu") == {"value": 61.0, "step": 1.0}
    assert ours.seeds_for("smoke") == 2 and ours.seeds_for("cpu") == 1 and ours.seeds_for("paper") == 10
    jobs = plan_jobs(registry.rows, FIXTURE, profile="cpu")
    assert [(j.experiment, j.seed, j.parameters["value"]) for j in jobs] == [("figX.ours", 1, 61.0)]
    assert [j.seed for j in plan_jobs(registry.rows, FIXTURE, profile="smoke") if j.experiment == "figX.ours"] == [1, 2]

    result = check(registry.rows, [rec("figX.ours", 1, "cpu", accuracy=61.0)], "cpu")
    assert [(v.row, v.verdict) for v in result.verdicts] == [("figX.ours", "reproduced")]  # only cpu rows
    drift = check(registry.rows, [rec("figX.ours", 1, "cpu", accuracy=62.0)], "cpu")
    assert drift.verdicts[0].verdict == "above" and drift.verdicts[0].failed  # no paper claim: any drift fails

    write_results(tmp_path / "a", experiment="figX.ours", profile="cpu", seed=1, metrics={"accuracy": 61.0},
                  parameters={})
    assert main(["check", "--registry", str(FIXTURE), "--results", str(tmp_path), "--profile", "cpu"]) == 0


def test_rows_selection_brings_the_experiments_of_matching_claims(registry):
    rows = select_rows(registry.rows, ["figX.best*"], registry.claims)
    assert sorted(r.id for r in rows) == ["figX.other", "figX.ours", "figX.standard"]
    assert [c.id for c in select_claims(registry.claims, ["figX.best*"])] == ["figX.best_of_ours_by_5"]


def test_check_cli_strict_and_patterns_that_match_nothing(tmp_path, capsys):
    write_results(tmp_path / "a", experiment="toy.printed", profile="paper", seed=1, metrics={"accuracy": 50.2},
                  parameters={})
    args = ["check", "--registry", str(FIXTURE), "--results", str(tmp_path)]
    assert main([*args, "--rows", "toy.*"]) == 0
    assert main([*args, "--rows", "toy.*", "figX.ours_beat*", "--strict"]) == 1  # the claim's runs are missing
    assert main([*args, "--rows", "nothing.matches*"]) == 2
    assert "matches no row, experiment or claim id" in capsys.readouterr().err


BAD_CLAIMS = {
    "unknown experiment": ("left: [figX.ourz]", "'figX.ourz' is not the experiment of any row; did you mean"),
    "bad relation": ("relation: '=>'", "field 'relation': must be one of '<', '<=', '>', '>='"),
    "bad reduce": ("left_reduce: median", "field 'left_reduce': must be one of 'each', 'max', 'min', 'mean'"),
    "bad pin": ("smoke: {expected: yes}", "field 'smoke.expected': must be one of 'holds', 'fails', 'degenerate'"),
    "unknown metric": ("metric: acuracy", "unknown metric name 'acuracy'; did you mean 'accuracy'"),
    "negative margin": ("margin: -1.0", "field 'margin': -1.0 is negative"),
    "quoted margin": ("margin: '1e-5'", "field 'margin': '1e-5' is a string, not a number (it is quoted); write 1e-5"),
    "unknown field": ("figur: X", "field 'figur': unknown field; did you mean 'figure'?"),
    "bad aggregation": ("aggregation: median_of10", "field 'aggregation': must be one of 'max_of_10', "
                                                    "'median_of_10'"),
    "operand key": ("left: [{experiment: figX.ours, metrc: accuracy}]",
                    "field 'left[0].metrc': unknown key; did you mean 'metric'?"),
    "operand metric": ("left: [{experiment: figX.ours, metric: acuracy}]",
                       "field 'left[0].metric': unknown metric name 'acuracy'; did you mean 'accuracy'"),
    "operand metric not registered": ("left: [{experiment: figX.ours, metric: f1}]",
                                      "field 'left[0]': experiment 'figX.ours' does not register metric 'f1' (its "
                                      "rows have accuracy)"),
    "operand not a key": ("right: [5]", "field 'right[0]': expected an experiment key or {experiment: X, metric: "
                                        "M}, got 5"),
    "empty side": ("right: []", "field 'right': expected a non-empty list of experiment keys, got []"),
    "pin key": ("smoke: {expect: holds}", "field 'smoke.expect': unknown key; did you mean 'expected'?"),
    "pin shape": ("smoke: holds", "field 'smoke': expected {expected: holds|fails|degenerate}, got 'holds'"),
    "per_metric without the metric": ("per_metric: [f1]", "field 'per_metric': must contain the claim's metric "
                                                           "'accuracy'"),
    "per_metric not registered": ("per_metric: [accuracy, f1]", "field 'per_metric': experiment 'figX.ours' does "
                                                                "not register metric 'f1'"),
    "per_metric empty": ("per_metric: []", "field 'per_metric': expected a non-empty list of metric names, got []"),
    "per_metric unknown": ("per_metric: [accuracy, acuracy]", "field 'per_metric[1]': unknown metric name "
                                                              "'acuracy'; did you mean 'accuracy'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CLAIMS))
def test_bad_claims_are_refused_with_the_field_named(tmp_path, case):
    line, message = BAD_CLAIMS[case]
    key = line.split(":")[0]
    text = FIXTURE.read_text()
    head, claims = text.split("claims:\n", 1)
    first = claims.split("  - id: figX.best_of_ours_by_5")[0]
    lines = [ln for ln in first.splitlines() if not ln.strip().startswith(f"{key}:")]
    path = tmp_path / "r.yaml"
    path.write_text(head.replace("../../notebooks_for_tests", str(FIXTURE.parents[1].parent / "notebooks_for_tests"))
                    + "claims:\n" + "\n".join(lines) + f"\n    {line}\n")
    with pytest.raises(RegistryError) as info:
        read_registry(path, check_notebooks=False)
    assert "claim 'figX.ours_beat_standard'" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema_version: 3\nrows:\n  - {id: a, id: b}\n", "found duplicate key 'id'"),
        ("schema_version: 3\nschema_version: 3\nrows: []\n", "found duplicate key 'schema_version'"),
        ("schema_version: 3\nt: &t {a: 1}\nrows:\n  - {<<: *t, b: 2, b: 3}\n", "found duplicate key 'b'"),
        ("schema_version: 9\nrows: []\n", "schema_version 9 is not supported"),
        ("rows: []\n", "add `schema_version: 3` at the top"),
        ("schema_version: 3\nrows:\n\t- {id: a}\n", "YAML forbids tabs for indentation"),
    ],
)
def test_registry_loader_refuses_silent_yaml(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=None) as info:
        read_registry(path, check_notebooks=False)
    assert message in str(info.value)


def test_a_merged_key_may_be_overridden(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("schema_version: 3\nt: &t {a: 1, b: 1}\nrows: [{<<: *t, b: 2}]\n")
    with pytest.raises(RegistryError, match="unknown top-level key 't'"):  # parsed: only the key name is wrong
        read_registry(path, check_notebooks=False)


def test_bom_and_anchor_merges_are_fine(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes("\ufeff".encode() + FIXTURE.read_bytes().replace(b"../../notebooks_for_tests", b"nb"))
    assert len(read_registry(path, check_notebooks=False).rows) == 4  # `<<: *fig_row` then `id:` is no duplicate
