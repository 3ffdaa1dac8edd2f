"""The statistics behind a claim's verdict: its effect size, a 95% bootstrap interval over seeds, and degeneracy.

A claim compares experiments (methods) on one metric, or on each of several metrics (``per_metric``: tasks).
Every operand is a vector of per-seed values. The **effect** is the claim's weakest comparison, in the claimed
direction and in metric units: ``min`` over the compared pairs (and tasks) of ``left - right - margin`` for
``>``/``>=`` (``right - left - margin`` for ``<``/``<=``), each side aggregated over seeds as the claim's
``aggregation`` says and reduced as its ``left_reduce``/``right_reduce`` say. The claim holds in its point
estimate when the effect is > 0 (``>=``/``<=``: >= 0).

The interval is a stratified bootstrap over seeds and tasks: every operand (one method on one task) is resampled
on its own (``scipy.stats.bootstrap`` with independent samples, percentile method, 95%, 2,000 resamples,
seeded, so a verdict is deterministic), as rliable's stratified bootstrap does for runs x tasks. (rliable itself
is not used: its dependency ``arch`` does not import with the pinned pandas.) A claim **holds** only when the
whole interval lies on the claimed side of 0; with fewer than two seeds per operand there is no interval and
the verdict says so (``holds (1 seed, no interval)``).

A comparison is **degenerate** when every compared value is equal, or every one sits at (or below) its
majority-class baseline (a probe that learned nothing; MCC's baseline is 0): such a comparison can neither hold
nor fail.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONFIDENCE",
    "MIN_SEEDS_FOR_INTERVAL",
    "Effect",
    "bootstrap_effect",
    "degenerate_reason",
    "majority_baseline",
    "pair_effects",
]

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_SEEDS_FOR_INTERVAL = 2
_TIE = 1e-9

Aggregate = Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class Effect:
    """Effect size (metric units, > 0 = the claimed direction) and its 95% interval (None: no interval)."""

    estimate: float
    low: float | None
    high: float | None
    n_seeds: int  # the fewest seeds of any operand

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def text(self) -> str:
        """``effect +1.2 [95% CI +0.4, +2.0], 10 seeds`` or ``effect +1.2 (1 seed, no interval)``."""
        if not self.has_interval:
            return f"effect {self.estimate:+.4g} ({_seeds(self.n_seeds)}, no interval)"
        return (f"effect {self.estimate:+.4g} [{CONFIDENCE:.0%} CI {self.low:+.4g}, {self.high:+.4g}], "
                f"{_seeds(self.n_seeds)}")


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def pair_effects(left: Sequence[tuple[str, float]], right: Sequence[tuple[str, float]], relation: str,
                 margin: float = 0.0) -> list[tuple[str, str, float]]:
    """``(left key, right key, effect)`` of every compared pair, > 0 in the claimed direction."""
    sign = 1.0 if relation in (">", ">=") else -1.0
    return [(lk, rk, sign * (lv - rv) - margin) for lk, lv in left for rk, rv in right]


def bootstrap_effect(samples: Mapping[str, Sequence[float]], effect: Callable[[Mapping[str, float]], float],
                     aggregate: Aggregate, *, seed: int = 0) -> Effect:
    """The effect on the seeds as observed, and its stratified bootstrap interval.

    ``samples``: operand -> per-seed values; ``aggregate`` turns one operand's seeds into its value (mean,
    median, max); ``effect`` maps the operands' values to the claim's effect.
    """
    keys = list(samples)
    arrays = [np.asarray(samples[k], dtype=float) for k in keys]
    n_seeds = min(len(a) for a in arrays)
    estimate = float(effect({k: aggregate(a.tolist()) for k, a in zip(keys, arrays, strict=True)}))
    if n_seeds < MIN_SEEDS_FOR_INTERVAL:
        return Effect(estimate, None, None, n_seeds)
    from scipy.stats import bootstrap

    def statistic(*resampled: np.ndarray) -> float:
        return float(effect({k: aggregate(a.tolist()) for k, a in zip(keys, resampled, strict=True)}))

    result = bootstrap(tuple(arrays), statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                       method="percentile", vectorized=False, paired=False, random_state=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # every resample identical: the interval is the point
        low = high = estimate
    return Effect(estimate, low, high, n_seeds)


def majority_baseline(extra: Mapping, metric: str) -> float | None:
    """The majority-class baseline a probing run recorded for ``metric`` (``probe_<task>``): the majority-class
    dev accuracy x100, or 0 for MCC (a constant prediction has MCC 0); None when the run recorded none."""
    for stage in extra.get("stages", []) or []:
        probe = (stage.get("probes") or {}).get(metric)
        if isinstance(probe, Mapping):
            if probe.get("metric") == "mcc":
                return 0.0
            value = probe.get("majority")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def degenerate_reason(values: Mapping[str, float], baselines: Mapping[str, float | None]) -> str:
    """Why the compared ``values`` cannot support an ordering ('' when they can)."""
    numbers = list(values.values())
    if numbers and all(baselines.get(k) is not None and v <= baselines[k] + _TIE for k, v in values.items()):
        shown = ", ".join(f"{k.split(':')[0]} {v:.4g} (baseline {baselines[k]:.4g})" for k, v in values.items())
        return f"every compared value sits at or below its majority-class baseline: {shown}"
    if len(numbers) > 1 and max(numbers) - min(numbers) <= _TIE:
        return f"every compared value is {numbers[0]:.4g}"
    return ""


def aggregate_values(values: Sequence[float], op: str) -> float:
    """``max`` / ``median`` / ``mean`` of per-seed values."""
    if op == "max":
        return max(values)
    if op == "median":
        return float(statistics.median(values))
    return float(statistics.fmean(values))
