"""Compare run results with the registry: aggregate seeds, apply tolerances, give one verdict per metric.

Pure functions (no I/O besides what the caller passes in). Verdicts:
``reproduced`` (within tolerance), ``above`` / ``below`` (outside it), ``missing`` (no or too few runs, no
smoke expectation, or a reported row), ``invalid`` (a run lacks the metric or holds a non-finite value).

Paper profile: the reproduced value (seeds aggregated as the row's ``aggregation`` says) is compared with
the paper's number; a deviation in the *worse* direction fails (``below`` for accuracy/ROUGE, ``above`` for
pass counts). Smoke profile: never compares with the paper; compares with the row's pinned
``smoke.expected`` values, and any deviation beyond ``smoke.tolerance`` fails (pipeline drift).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .registry import AGGREGATIONS, METRIC_NAMES, RegistryRow
from .results import ResultRecord

__all__ = ["VERDICTS", "CheckResult", "Verdict", "aggregate", "check", "exit_code", "format_table"]

VERDICTS = ("reproduced", "above", "below", "missing", "invalid")
_EPS = 1e-9  # float slack on the tolerance bound


@dataclass(frozen=True)
class Verdict:
    """The check of one metric of one registry row."""

    row: str
    metric: str
    paper: float
    expected: float | None  # what was compared against: paper value, or smoke expectation (smoke profile)
    reproduced: float | None  # seeds aggregated (also shown when there are too few seeds)
    tolerance: float | None
    verdict: str
    failed: bool
    n_seeds: int
    seeds_needed: int
    reason: str = ""

    @property
    def delta(self) -> float | None:
        """reproduced - expected, when both exist."""
        if self.reproduced is None or self.expected is None or not math.isfinite(self.reproduced):
            return None
        return self.reproduced - self.expected


@dataclass
class CheckResult:
    """All verdicts plus warnings about result files that matched no row or were superseded."""

    profile: str
    verdicts: list[Verdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def aggregate(values: Sequence[float], aggregation: str) -> float:
    """Aggregate per-seed values: ``max`` / ``median`` / ``mean`` as the aggregation name says."""
    op = AGGREGATIONS[aggregation][0]
    if op == "max":
        return max(values)
    if op == "median":
        return float(statistics.median(values))
    return float(statistics.fmean(values))


def _group(
    rows: Sequence[RegistryRow], records: Iterable[ResultRecord], profile: str, warnings: list[str]
) -> dict[str, list[ResultRecord]]:
    """Records of ``profile`` per experiment, one per seed (the latest finished wins)."""
    key_to_experiment = {r.experiment: r.experiment for r in rows} | {r.id: r.experiment for r in rows}
    by_seed: dict[str, dict[int, ResultRecord]] = defaultdict(dict)
    for rec in records:
        if rec.profile != profile:
            continue
        experiment = key_to_experiment.get(rec.row) or key_to_experiment.get(rec.experiment)
        if experiment is None:
            warnings.append(f"{rec.path}: row {rec.row!r} is not in the registry; ignored")
            continue
        previous = by_seed[experiment].get(rec.seed)
        if previous is not None:
            keep, drop = sorted([previous, rec], key=lambda r: r.finished_at or "", reverse=True)
            warnings.append(
                f"{drop.path}: seed {rec.seed} of {experiment!r} also in {keep.path}; using the latter"
            )
            rec = keep
        by_seed[experiment][rec.seed] = rec
    return {exp: [seeds[s] for s in sorted(seeds)] for exp, seeds in by_seed.items()}


def _judge(row: RegistryRow, metric: str, runs: list[ResultRecord], profile: str) -> Verdict:
    paper = row.metrics[metric]
    smoke = profile == "smoke"
    needed = 1 if smoke else row.seeds_needed
    expected = row.smoke.expected.get(metric) if smoke else paper
    tolerance = row.smoke.tolerance.get(metric) if smoke else row.tolerance[metric]

    def verdict(
        name: str, reproduced: float | None = None, reason: str = "", failed: bool = False
    ) -> Verdict:
        return Verdict(
            row.id, metric, paper, expected, reproduced, tolerance, name, failed, len(runs), needed, reason
        )

    if row.role != "target":
        return verdict("missing", reason="reported row: quoted from another paper, not reproduced")
    if not runs:
        return verdict("missing", reason=f"no {profile} runs")
    values: list[float] = []
    for rec in runs:
        value = rec.metrics.get(metric)
        if value is None:
            return verdict(
                "invalid", reason=f"seed {rec.seed} has no metric {metric!r} ({rec.path})", failed=True
            )
        if not math.isfinite(value):
            return verdict(
                "invalid", value, f"seed {rec.seed}: {metric} is {value} ({rec.path})", failed=True
            )
        values.append(value)
    reproduced = aggregate(values, row.aggregation)
    if len(values) < needed:
        return verdict("missing", reproduced, f"only {len(values)} of {needed} seeds for {row.aggregation}")
    if expected is None or tolerance is None:
        return verdict("missing", reproduced, "no smoke expectation pinned")
    delta = reproduced - expected
    if abs(delta) <= tolerance + _EPS:
        return verdict(
            "reproduced", reproduced, "matches the pinned smoke value (no paper claim)" if smoke else ""
        )
    name = "above" if delta > 0 else "below"
    higher_is_better = METRIC_NAMES[metric][1]
    failed = smoke or (name == "below") == higher_is_better
    reason = "smoke value drifted from the pinned expectation" if smoke else ""
    return verdict(name, reproduced, reason, failed)


def check(
    rows: Sequence[RegistryRow],
    records: Iterable[ResultRecord],
    profile: str = "paper",
    *,
    include_reported: bool = True,
) -> CheckResult:
    """Verdicts for every metric of every row (target rows only unless ``include_reported``)."""
    if profile not in ("paper", "smoke"):
        raise ValueError(f"profile must be 'paper' or 'smoke', not {profile!r}")
    result = CheckResult(profile)
    grouped = _group(rows, records, profile, result.warnings)
    for row in rows:
        if row.role != "target" and not include_reported:
            continue
        runs = grouped.get(row.experiment, [])
        result.verdicts.extend(_judge(row, metric, runs, profile) for metric in row.metrics)
    return result


def exit_code(result: CheckResult) -> int:
    """0 when no verdict failed, 1 when one did (``below`` tolerance, or ``invalid``; any drift in smoke)."""
    return 1 if any(v.failed for v in result.verdicts) else 0


def _fmt(value: float | None, spec: str = ".6g") -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: CheckResult) -> str:
    """The check table as aligned plain text."""
    ref = "expected" if result.profile == "smoke" else "paper"
    header = ["row", "metric", ref, "reproduced", "delta", "tol", "verdict", "seeds", "note"]
    lines = [header]
    for v in result.verdicts:
        lines.append(
            [
                v.row,
                v.metric,
                _fmt(v.expected),
                _fmt(v.reproduced),
                _fmt(v.delta, "+.3g"),
                _fmt(v.tolerance, "g"),
                v.verdict.upper() if v.failed else v.verdict,
                f"{v.n_seeds}/{v.seeds_needed}",
                v.reason,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in lines
    ]
    out.insert(1, "-" * min(120, len(out[0])))
    counts = {name: sum(v.verdict == name for v in result.verdicts) for name in VERDICTS}
    failed = sum(v.failed for v in result.verdicts)
    out.append("")
    out.append(
        f"profile {result.profile}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f"; {failed} failed"
    )
    return "\n".join(line.rstrip() for line in out)
