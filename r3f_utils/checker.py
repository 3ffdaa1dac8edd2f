"""Compare run results with the registry: aggregate seeds, apply tolerances, give one verdict per metric.

Pure functions (no I/O besides what the caller passes in). Verdicts:
``reproduced`` (within tolerance), ``above`` / ``below`` (outside it), ``missing`` (no or too few runs, no
smoke expectation, or a reported row), ``invalid`` (a run lacks the metric or holds a non-finite value),
``measured`` (paper profile, a figure metric: the paper prints no number, the value is shown, not judged).

Paper profile: the reproduced value (seeds aggregated as the row's ``aggregation`` says) is compared with
the paper's number; a deviation in the *worse* direction fails (``below`` for accuracy/ROUGE, ``above`` for
pass counts). Smoke and cpu profiles: never compare with the paper; they compare with the row's pinned
``smoke.expected`` / ``cpu.expected`` values, and any deviation beyond the section's tolerance fails (drift).

Claims (the paper's ordering statements, mostly from figures) are judged over the same records, with the
statistics of :mod:`r3f_utils.claim_stats`: ``holds`` (strictly, and the 95% bootstrap interval of the effect
over seeds and tasks excludes 0 in the claimed direction; with one seed: ``holds (1 seed, no interval)``) /
``fails`` / ``degenerate`` (the compared values are all equal, or all at their majority-class baseline: no
ordering can be read) / ``missing`` (an operand lacks runs or seeds) / ``invalid``. In the paper profile a
claim that ``fails`` fails the check; in smoke/cpu only a verdict other than the pinned one fails, and a claim
there is never evidence about the paper (tiny models, fixtures).
``strict`` (CI) also fails on any ``missing`` row metric or claim.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .claim_stats import Effect, aggregate_values, bootstrap_effect, degenerate_reason, majority_baseline, pair_effects
from .registry import AGGREGATIONS, METRIC_NAMES, PROFILES, Claim, ClaimOperand, RegistryRow
from .results import ResultRecord

__all__ = [
    "CLAIM_VERDICTS",
    "VERDICTS",
    "CheckResult",
    "ClaimVerdict",
    "Verdict",
    "aggregate",
    "check",
    "exit_code",
    "format_claims",
    "format_table",
    "judge_claim",
]

VERDICTS = ("reproduced", "above", "below", "missing", "invalid", "measured")
CLAIM_VERDICTS = ("holds", "fails", "degenerate", "missing", "invalid")
_EPS = 1e-9  # float slack on the tolerance bound


@dataclass(frozen=True)
class Verdict:
    """The check of one metric of one registry row."""

    row: str
    metric: str
    paper: float | None  # None: a figure metric, no printed number
    expected: float | None  # what was compared against: paper value, or the smoke/cpu pin
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


@dataclass(frozen=True)
class ClaimVerdict:
    """The judgement of one claim: the aggregated operand values and the verdict."""

    claim: str
    statement: str
    verdict: str  # CLAIM_VERDICTS
    failed: bool
    left: dict[str, float | None]  # "experiment:metric" -> seeds aggregated (None: no runs)
    right: dict[str, float | None]
    relation: str
    expected: str | None = None  # the verdict pinned for this profile (smoke, cpu)
    reason: str = ""
    effect: Effect | None = None  # effect size and its 95% interval (None: not judged)
    profile: str = "paper"

    @property
    def label(self) -> str:
        """The verdict as shown: ``holds``, or ``holds (1 seed, no interval)`` when there are too few seeds."""
        if self.effect is not None and not self.effect.has_interval and self.verdict in ("holds", "fails"):
            n = self.effect.n_seeds
            return f"{self.verdict} ({n} seed{'' if n == 1 else 's'}, no interval)"
        return self.verdict

    @property
    def evidence(self) -> str:
        """What the verdict says about the paper: the effect and interval (paper), or why it says nothing."""
        if self.profile != "paper":
            return (f"{self.profile} profile: tiny models / fixtures, pinned to catch changes, "
                    "not evidence about the paper")
        return self.effect.text() if self.effect is not None else ""


@dataclass
class CheckResult:
    """All verdicts plus warnings about result files that matched no row or were superseded."""

    profile: str
    verdicts: list[Verdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    claims: list[ClaimVerdict] = field(default_factory=list)


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
        experiment = key_to_experiment.get(rec.experiment)  # an experiment key, or a row id that names one
        if experiment is None:
            warnings.append(f"{rec.path}: experiment {rec.experiment!r} is not in the registry; ignored")
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
    spec = row.profile_spec(profile)
    smoke = profile != "paper"  # smoke and cpu: compared with the pinned values, never with the paper
    needed = row.seeds_for(profile)
    expected = (spec.expected.get(metric) if spec is not None else None) if smoke else paper
    tolerance = (spec.tolerance.get(metric) if spec is not None else None) if smoke else row.tolerance[metric]

    def verdict(
        name: str, reproduced: float | None = None, reason: str = "", failed: bool = False
    ) -> Verdict:
        return Verdict(
            row.id, metric, paper, expected, reproduced, tolerance, name, failed, len(runs), needed, reason
        )

    if row.role != "target":
        return verdict("missing", reason="reported row: quoted from another paper, not reproduced")
    if smoke and spec is None:
        return verdict("missing", reason=f"the row has no {profile} profile")
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
    if not smoke and paper is None:
        return verdict("measured", reproduced, "the paper prints no number (figure); see the claims")
    if expected is None and paper is None:  # a figure metric (e.g. wall time): shown, nothing to compare with
        return verdict("measured", reproduced, f"figure metric, no {profile} pin (see the claims)")
    if expected is None or tolerance is None:
        return verdict("missing", reproduced, f"no {profile} expectation pinned")
    delta = reproduced - expected
    if abs(delta) <= tolerance + _EPS:
        return verdict(
            "reproduced", reproduced, f"matches the pinned {profile} value (no paper claim)" if smoke else ""
        )
    name = "above" if delta > 0 else "below"
    higher_is_better = METRIC_NAMES[metric][1]
    failed = smoke or (name == "below") == higher_is_better
    reason = f"{profile} value drifted from the pinned expectation" if smoke else ""
    return verdict(name, reproduced, reason, failed)




def _operand_values(
    claim: Claim, operands: Sequence[ClaimOperand], grouped: dict[str, list[ResultRecord]], needed: dict[str, int],
    problems: dict[str, list[str]], seeds: dict[str, list[float]], baselines: dict[str, float | None],
) -> dict[str, float | None]:
    """Aggregated value per operand of one side; per-seed values into ``seeds``, majority-class baselines into
    ``baselines``; unusable operands are added to ``problems``."""
    values: dict[str, float | None] = {}
    for operand in operands:
        key = f"{operand.experiment}:{operand.metric}"
        runs = grouped.get(operand.experiment, [])
        bad = [rec for rec in runs if not math.isfinite(rec.metrics.get(operand.metric, math.nan))]
        if bad:
            values[key] = None
            problems["invalid"].append(f"seed {bad[0].seed} of {operand.experiment} has {operand.metric}="
                                       f"{bad[0].metrics.get(operand.metric)} ({bad[0].path})")
            continue
        per_seed = [rec.metrics[operand.metric] for rec in runs]
        values[key] = aggregate(per_seed, claim.aggregation) if per_seed else None
        seeds[key] = per_seed
        found = [b for b in (majority_baseline(rec.extra, operand.metric) for rec in runs) if b is not None]
        baselines[key] = statistics.fmean(found) if found else None
        want = needed.get(operand.experiment, 1)
        if len(per_seed) < want:
            problems["missing"].append(f"{operand.experiment} has {len(per_seed)} of {want} seeds")
    return values


_REDUCE = {"max": max, "min": min, "mean": statistics.fmean}


def _reduced(values: dict[str, float], keys: Sequence[str], how: str) -> list[tuple[str, float]]:
    pairs = [(k, values[k]) for k in keys]
    return pairs if how == "each" else [(how, _REDUCE[how]([v for _, v in pairs]))]


def judge_claim(
    claim: Claim, grouped: dict[str, list[ResultRecord]], profile: str, needed: dict[str, int] | int
) -> ClaimVerdict:
    """Judge one claim over the runs grouped by experiment (``needed``: seeds per experiment, or one number).

    Per metric (``claim.per_metric``: each task; else the claim's metric): degenerate when every compared value
    is equal or at its majority-class baseline; otherwise the effect (the weakest compared pair, > 0 in the
    claimed direction) must be > 0 (``>=``/``<=``: >= 0) and, with two or more seeds, its 95% stratified bootstrap
    interval must exclude 0. ``fails`` if any task fails, else ``degenerate`` if any task is, else ``holds``.
    """
    if isinstance(needed, int):
        needed = dict.fromkeys(claim.experiments, needed)
    problems: dict[str, list[str]] = {"invalid": [], "missing": []}
    seeds: dict[str, list[float]] = {}
    baselines: dict[str, float | None] = {}
    metrics = claim.per_metric or (None,)

    def side_of(operands: Sequence[ClaimOperand], metric: str | None) -> list[ClaimOperand]:
        return [o if metric is None else ClaimOperand(o.experiment, metric) for o in operands]

    left: dict[str, float | None] = {}
    right: dict[str, float | None] = {}
    keys: list[tuple[list[str], list[str]]] = []
    for metric in metrics:
        lv = _operand_values(claim, side_of(claim.left, metric), grouped, needed, problems, seeds, baselines)
        rv = _operand_values(claim, side_of(claim.right, metric), grouped, needed, problems, seeds, baselines)
        left.update(lv)
        right.update(rv)
        keys.append((list(lv), list(rv)))
    expected = claim.expected.get(profile)

    def verdict(name: str, reason: str, effect: Effect | None = None) -> ClaimVerdict:
        if profile == "paper":
            failed = name in ("fails", "invalid")
        else:  # tiny models say nothing about the paper: only a change of the pinned verdict fails
            failed = name == "invalid" or (expected is not None and name in ("holds", "fails", "degenerate")
                                           and name != expected)
        return ClaimVerdict(claim.id, claim.statement, name, failed, left, right, claim.relation, expected, reason,
                            effect, profile)

    for name in ("invalid", "missing"):
        if problems[name]:
            return verdict(name, "; ".join(dict.fromkeys(problems[name])))
    values = {k: float(v) for k, v in {**left, **right}.items() if v is not None}
    degenerate = {i: degenerate_reason({k: values[k] for k in lk + rk}, baselines) for i, (lk, rk) in enumerate(keys)}
    judged = [i for i in range(len(keys)) if not degenerate[i]]
    op = AGGREGATIONS[claim.aggregation][0]

    def effect_of(v: dict[str, float], parts: Sequence[int]) -> float:
        return min(e for i in parts for _, _, e in pair_effects(
            _reduced(v, keys[i][0], claim.left_reduce), _reduced(v, keys[i][1], claim.right_reduce),
            claim.relation, claim.margin))

    strict = claim.relation in ("<", ">")
    broken = [f"{lk} {values.get(lk, math.nan):.4g} vs {rk} {values.get(rk, math.nan):.4g}"
              for i in judged for lk, rk, e in pair_effects(
                  _reduced(values, keys[i][0], claim.left_reduce), _reduced(values, keys[i][1], claim.right_reduce),
                  claim.relation, claim.margin)
              if (e <= 0 if strict else e < 0)]
    margin = f" by {claim.margin:g}" if claim.margin else ""
    dead = "; ".join(f"{metrics[i] or claim.metric}: {degenerate[i]}" for i in degenerate if degenerate[i])
    if not judged:
        return verdict("degenerate", dead)
    wanted = [k for i in judged for k in keys[i][0] + keys[i][1]]
    effect = bootstrap_effect({k: seeds[k] for k in dict.fromkeys(wanted)},
                              lambda v: effect_of(dict(v), judged), lambda xs: aggregate_values(xs, op))
    if broken:
        return verdict("fails", f"not {claim.relation}{margin}: " + "; ".join(broken), effect)
    if effect.has_interval and effect.low is not None and effect.low <= 0:
        return verdict("fails", f"the {effect.text()} does not exclude 0", effect)
    if dead:
        return verdict("degenerate", f"holds on the other tasks, but {dead}", effect)
    return verdict("holds", "", effect)


def check(
    rows: Sequence[RegistryRow],
    records: Iterable[ResultRecord],
    profile: str = "paper",
    *,
    include_reported: bool = True,
    claims: Sequence[Claim] = (),
) -> CheckResult:
    """Verdicts for every metric of every row (target rows only unless ``include_reported``) and every claim.

    Claims read the experiments of ``rows``: pass the rows the claims refer to (``select_rows`` with the
    claims does that).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    result = CheckResult(profile)
    records = list(records)
    grouped = _group(rows, records, profile, result.warnings)
    for row in rows:
        if row.role != "target" and not include_reported:
            continue
        if profile == "cpu" and row.cpu is None and row.role == "target":
            continue  # the cpu profile is the rows that declare one
        runs = grouped.get(row.experiment, [])
        result.verdicts.extend(_judge(row, metric, runs, profile) for metric in row.metrics)
    by_experiment = {r.experiment: r for r in rows}
    for claim in claims:
        needed = {e: claim.seeds_needed if profile == "paper" or e not in by_experiment
                  else by_experiment[e].seeds_for(profile) for e in claim.experiments}
        result.claims.append(judge_claim(claim, grouped, profile, needed))
    return result


def exit_code(result: CheckResult, *, strict: bool = False) -> int:
    """0 when nothing failed, 1 when a row metric or claim did (``below`` tolerance, ``invalid``, a claim that
    ``fails`` in the paper profile, any drift in smoke/cpu). ``strict``: also 1 when anything is ``missing``."""
    failed = any(v.failed for v in result.verdicts) or any(c.failed for c in result.claims)
    if strict:
        failed = failed or any(v.verdict == "missing" for v in result.verdicts) or any(
            c.verdict == "missing" for c in result.claims)
    return 1 if failed else 0


def _fmt(value: float | None, spec: str = ".6g") -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: CheckResult, *, failed_runs: int = 0) -> str:
    """The check table as aligned plain text; ``failed_runs`` (runs whose notebook raised) count as failed."""
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
    if result.claims:
        out.extend(["", format_claims(result)])
    out.append("")
    out.append(
        f"profile {result.profile}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in VERDICTS[:4])
        + f"; {failed + failed_runs} failed"
        + (f" ({failed_runs} run{'s' if failed_runs > 1 else ''} whose notebook raised)" if failed_runs else "")
    )
    if result.claims:
        claim_counts = {name: sum(c.verdict == name for c in result.claims) for name in CLAIM_VERDICTS}
        out.append("claims: " + ", ".join(f"{n} {k}" for k, n in claim_counts.items())
                   + f"; {sum(c.failed for c in result.claims)} failed")
    return "\n".join(line.rstrip() for line in out)


def _values(values: dict[str, float | None]) -> str:
    return ", ".join(f"{k.split(':')[0]} {_fmt(v, '.4g')}" for k, v in values.items())


def format_claims(result: CheckResult) -> str:
    """The claims as plain text: id, verdict (pinned verdict in smoke/cpu), the statement, the values."""
    lines = []
    if result.claims and result.profile != "paper":
        lines.append(f"claims in the {result.profile} profile are pinned to catch changes; they are not evidence "
                     "about the paper")
    for c in result.claims:
        pin = f" (pinned: {c.expected})" if c.expected else ""
        shown = c.label.upper() if c.failed else c.label
        interval = f"  [{c.effect.text()}]" if c.effect is not None and result.profile == "paper" else ""
        lines.append(f"claim {c.claim}: {shown}{pin}{interval}  {c.statement}")
        reason = f"  {c.reason}" if c.reason else ""
        lines.append(f"    [{_values(c.left)}] {c.relation} [{_values(c.right)}]{reason}")
    return "\n".join(lines)
