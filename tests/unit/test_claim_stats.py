"""Issue 18 §6: claims judged as the paper states them (strict "best", per task, against SMART too), with an effect
size and a 95% stratified bootstrap interval over seeds and tasks; verdicts holds / fails / degenerate / no interval
from constructed results."""

from __future__ import annotations

from pathlib import Path

import pytest

from r3f_utils.checker import check, format_claims
from r3f_utils.claim_stats import bootstrap_effect, degenerate_reason, majority_baseline
from r3f_utils.registry import read_registry, select_claims, select_rows
from r3f_utils.report import _claim_fields
from r3f_utils.results import ResultRecord

TASKS = ("mnli", "qqp", "rte", "qnli", "mrpc", "cola")


@pytest.fixture(scope="module")
def registry():
    return read_registry(check_notebooks=False)


def runs(experiment: str, per_seed: dict[str, list[float]], majority: dict[str, float] | None = None,
         profile: str = "paper") -> list[ResultRecord]:
    """One record per seed; ``majority``: the probes' majority-class baselines, recorded as a probing run does."""
    n = len(next(iter(per_seed.values())))
    probes = {m: {"task": m.removeprefix("probe_"), "metric": "mcc" if m == "probe_cola" else "accuracy",
                  "majority": b} for m, b in (majority or {}).items()}
    return [ResultRecord(path=Path(f"/runs/{experiment}/seed-{s + 1}/results.json"),
                         experiment=experiment, profile=profile, seed=s + 1,
                         metrics={m: v[s] for m, v in per_seed.items()},
                         extra={"stages": [{"probes": probes}]} if probes else {},
                         finished_at=f"2026-01-01T00:00:{s:02d}")
            for s in range(n)]


def judge(registry, pattern: str, records: list[ResultRecord], profile: str = "paper"):
    claims = select_claims(registry.claims, [pattern])
    rows = select_rows(registry.rows, [], claims=claims)
    result = check([r for r in rows if r.experiment in {e for c in claims for e in c.experiments}], records,
                   profile, claims=claims)
    return result, {c.claim: c for c in result.claims}


def fig3(values: dict[str, list[float]], metric: str = "probe_rte", majority: float | None = None):
    base = {metric: majority} if majority is not None else None
    return [r for method, v in values.items() for r in runs(f"fig3.{method}", {metric: v}, base)]


CLAIM = "fig3.rte.r3f_or_r4f_performed_best"


def test_all_four_verdicts_from_constructed_results(registry) -> None:
    # holds: R4F clearly best over 5 seeds; the interval of the gap excludes 0
    clear = fig3({"r3f": [60, 61, 59, 60, 60], "r4f": [66, 65, 67, 66, 66], "standard": [58, 57, 59, 58, 58],
                  "smart": [61, 62, 60, 61, 61]})
    result, verdicts = judge(registry, CLAIM, clear)
    held = verdicts[CLAIM]
    assert (held.verdict, held.failed, held.label) == ("holds", False, "holds")
    assert held.effect.estimate == pytest.approx(66 - 61) and 0 < held.effect.low <= held.effect.high
    assert "95% CI" in format_claims(result) and "95% CI" in _claim_fields(held)[2]  # check and report print it

    # fails: R4F above on average, but the seeds overlap: the interval of the gap includes 0
    noisy = fig3({"r3f": [50, 50, 50, 50, 50], "r4f": [70, 52, 55, 53, 71], "standard": [58, 57, 59, 58, 59],
                  "smart": [40, 41, 39, 40, 40]})
    failed = judge(registry, CLAIM, noisy)[1][CLAIM]
    assert failed.effect.estimate > 0  # the point estimate alone would hold
    assert (failed.verdict, failed.failed) == ("fails", True) and "does not exclude 0" in failed.reason

    # degenerate: every probe at the majority-class baseline (RTE dev majority 52.7%)
    collapsed = fig3({m: [52.7] * 5 for m in ("r3f", "r4f", "standard", "smart")}, majority=52.7)
    dead = judge(registry, CLAIM, collapsed)[1][CLAIM]
    assert (dead.verdict, dead.failed) == ("degenerate", False) and "majority-class baseline" in dead.reason
    below = fig3({"r3f": [50.0] * 5, "r4f": [52.7] * 5, "standard": [47.3] * 5, "smart": [52.7] * 5}, majority=52.7)
    assert judge(registry, CLAIM, below)[1][CLAIM].verdict == "degenerate"  # at or below: nothing learned

    # no interval: one seed (Figure 5's claim is a single run)
    one = runs("fig5.r4f", {"probe_mean": [70.0]}) + runs("fig5.stdpp", {"probe_mean": [60.0]})
    result, verdicts = judge(registry, "fig5.*", one)
    single = verdicts["fig5.r4f_retains_more_than_stdpp"]
    assert (single.verdict, single.label) == ("holds", "holds (1 seed, no interval)")
    assert "holds (1 seed, no interval)" in format_claims(result)


def test_performed_best_is_strict_and_equal_values_are_degenerate(registry) -> None:
    tie = fig3({"r3f": [50.0] * 5, "r4f": [60.0] * 5, "standard": [60.0] * 5, "smart": [55.0] * 5})
    verdict = judge(registry, CLAIM, tie)[1][CLAIM]
    assert (verdict.verdict, verdict.failed) == ("fails", True)  # a tie with standard is not "performed best"
    equal = fig3({m: [64.0] * 5 for m in ("r3f", "r4f", "standard", "smart")})  # no baseline recorded
    verdict = judge(registry, CLAIM, equal)[1][CLAIM]
    assert verdict.verdict == "degenerate" and "every compared value is 64" in verdict.reason


def _board(standard_on: dict[str, float]) -> list[ResultRecord]:
    records: list[ResultRecord] = []
    for method, level in (("standard", 0.0), ("smart", 5.0), ("r3f", 6.0), ("r4f", 7.0)):
        per_seed = {f"probe_{t}": [60.0 + level + (standard_on.get(t, 0.0) if method == "standard" else 0.0) + d
                                   for d in (-0.2, -0.1, 0.0, 0.1, 0.2)] for t in TASKS}
        records += runs(f"fig3.{method}", per_seed)
    return records


def test_standard_worse_across_the_board_is_judged_per_task_and_against_smart(registry) -> None:
    claim = "fig3.standard_worse_across_the_board"
    assert registry.claims[[c.id for c in registry.claims].index(claim)].per_metric == tuple(
        f"probe_{t}" for t in TASKS)
    held = judge(registry, claim, _board({}))[1][claim]
    assert held.verdict == "holds" and held.effect.estimate == pytest.approx(5.0)  # smallest gap: SMART
    # standard above SMART on CoLA alone: a six-task mean would still say "worse", the per-task reading does not
    one_task = judge(registry, claim, _board({"cola": 5.5}))[1][claim]
    assert (one_task.verdict, one_task.failed) == ("fails", True) and "probe_cola" in one_task.reason
    assert "fig3.smart:probe_cola" in one_task.reason


def test_smoke_claims_keep_their_pins_and_are_never_evidence(registry) -> None:
    smoke = [r for method, v in {"r3f": 60.0, "r4f": 66.0, "standard": 58.0, "smart": 61.0}.items()
             for r in runs(f"fig3.{method}", {"probe_rte": [v]}, profile="smoke")]
    result, verdicts = judge(registry, CLAIM, smoke, profile="smoke")
    verdict = verdicts[CLAIM]
    assert verdict.label == "holds (1 seed, no interval)"
    pinned = registry.claims[[c.id for c in registry.claims].index(CLAIM)].expected["smoke"]
    assert verdict.failed == (verdict.verdict != pinned)  # smoke: only a change of the pinned verdict fails
    assert "not evidence about the paper" in verdict.evidence
    text = format_claims(result)
    assert "not evidence about the paper" in text and "95% CI" not in text


def test_bootstrap_is_deterministic_and_degenerate_reasons() -> None:
    samples = {"a": [1.0, 2.0, 3.0], "b": [0.0, 0.5, 1.0]}

    def gap(v):
        return v["a"] - v["b"]

    first = bootstrap_effect(samples, gap, lambda xs: sum(xs) / len(xs))
    assert first == bootstrap_effect(samples, gap, lambda xs: sum(xs) / len(xs))
    assert first.estimate == pytest.approx(1.5) and first.low <= first.estimate <= first.high
    assert degenerate_reason({"x": 1.0, "y": 1.0}, {}) and not degenerate_reason({"x": 1.0, "y": 2.0}, {})
    assert majority_baseline({"stages": [{"probes": {"probe_cola": {"metric": "mcc", "majority": 69.1}}}]},
                             "probe_cola") == 0.0
    assert majority_baseline({}, "probe_rte") is None
