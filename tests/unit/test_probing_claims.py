"""The paper's probing statements (Figures 2-5) as registry claims: each can hold and can fail, judged by the
checker on synthetic results (paper profile, the seeds each claim's aggregation needs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from r3f_utils.checker import check, exit_code, format_claims
from r3f_utils.registry import read_registry, select_claims, select_rows
from r3f_utils.results import ResultRecord


@pytest.fixture(scope="module")
def registry():
    return read_registry(check_notebooks=False)


def seeds(experiment: str, n: int, **metrics: float) -> list[ResultRecord]:
    """``n`` seeds of ``experiment``; each metric spread +-1 around the given value (mean and median = value)."""
    spread = [i - (n - 1) / 2 for i in range(n)]
    return [ResultRecord(path=Path(f"/runs/{experiment}/seed-{s + 1}/results.json"),
                         experiment=experiment, profile="paper", seed=s + 1,
                         metrics={k: v + 0.1 * spread[s] for k, v in metrics.items()},
                         finished_at=f"2026-01-01T00:00:{s:02d}")
            for s in range(n)]


def judge(registry, pattern: str, records: list[ResultRecord]) -> dict[str, tuple[str, bool]]:
    claims = select_claims(registry.claims, [pattern])
    rows = select_rows(registry.rows, [], claims=claims)
    result = check([r for r in rows if r.experiment in {e for c in claims for e in c.experiments}], records,
                   "paper", claims=claims)
    assert format_claims(result)  # the checker prints them
    return {c.claim: (c.verdict, c.failed) for c in result.claims}


def test_every_figure_has_registered_claims(registry):
    ids = [c.id for c in registry.claims]
    for prefix, count in (("fig2.", 9), ("fig3.", 8), ("fig4.", 2), ("fig5.", 1)):
        assert sum(i.startswith(prefix) for i in ids) == count, prefix
    assert all(c.source and c.statement for c in registry.claims if c.id.startswith(("fig2", "fig3", "fig4", "fig5")))


def test_fig5_r4f_retains_more_than_stdpp_holds_and_can_fail(registry):
    claim = "fig5.r4f_retains_more_than_stdpp"
    held = judge(registry, claim, seeds("fig5.r4f", 1, probe_mean=70.0) + seeds("fig5.stdpp", 1, probe_mean=60.0))
    assert held[claim] == ("holds", False)
    failed = judge(registry, claim, seeds("fig5.r4f", 1, probe_mean=60.0) + seeds("fig5.stdpp", 1, probe_mean=70.0))
    assert failed[claim] == ("fails", True)  # the paper profile fails the check: exit 1


def test_fig3_max_of_r3f_r4f_against_standard_on_a_probed_task(registry):
    claim = "fig3.rte.r3f_or_r4f_performed_best"

    def runs(r3f: float, r4f: float, standard: float, smart: float = 40.0) -> list[ResultRecord]:
        return (seeds("fig3.r3f", 5, probe_rte=r3f) + seeds("fig3.r4f", 5, probe_rte=r4f)
                + seeds("fig3.smart", 5, probe_rte=smart) + seeds("fig3.standard", 5, probe_rte=standard))

    assert judge(registry, claim, runs(50.0, 60.0, 58.0))[claim][0] == "holds"  # one variant is enough
    assert judge(registry, claim, runs(50.0, 57.0, 58.0))[claim] == ("fails", True)
    assert judge(registry, claim, runs(50.0, 60.0, 58.0, smart=61.0))[claim] == ("fails", True)  # SMART above
    assert judge(registry, claim, runs(50.0, 57.0, 58.0)[:-1])[claim][0] == "missing"  # 4 of 5 standard seeds


def test_fig4_and_fig2_claims_fail_when_the_ordering_is_reversed(registry):
    standard = seeds("fig4.standard", 5, probe_final=70.0, probe_drop=10.0)
    ok = (seeds("fig4.r3f", 5, probe_final=80.0, probe_drop=2.0)
          + seeds("fig4.r4f", 5, probe_final=85.0, probe_drop=1.0) + standard)
    bad = (seeds("fig4.r3f", 5, probe_final=80.0, probe_drop=12.0)  # R3F drops more than standard
           + seeds("fig4.r4f", 5, probe_final=65.0, probe_drop=1.0) + standard)  # R4F ends below standard
    assert set(judge(registry, "fig4.*", ok).values()) == {("holds", False)}
    assert set(judge(registry, "fig4.*", bad).values()) == {("fails", True)}

    def table2(r3f: float, r4f: float, stdpp: float, smart: float = 80.0) -> list[ResultRecord]:
        return (seeds("table2.rte.roberta_large_r3f", 10, accuracy=r3f)
                + seeds("table2.rte.roberta_large_r4f", 10, accuracy=r4f)
                + seeds("table2.rte.roberta_large_stdpp", 10, accuracy=stdpp)
                + seeds("table2.rte.roberta_large_smart", 10, accuracy=smart))

    assert set(judge(registry, "fig2.rte.*_smart", table2(88.0, 87.0, 86.0)).values()) == {("holds", False)}
    verdicts = judge(registry, "fig2.rte.*_smart", table2(85.0, 85.5, 86.0))
    assert set(verdicts.values()) == {("fails", True)}
    assert set(judge(registry, "fig2.rte.*_smart", table2(88.0, 87.0, 86.0, smart=88.5)).values()) == {
        ("fails", True)}
    records = table2(85.0, 85.5, 86.0)
    claims = select_claims(registry.claims, ["fig2.rte.*_smart"])
    assert exit_code(check(select_rows(registry.rows, [], claims=claims), records, "paper", claims=claims)) == 1
