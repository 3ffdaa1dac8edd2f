"""GLUE/XNLI metrics against reference formulas written here (not against the library they wrap)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from r3f_utils import metrics

TOL = 1e-12


def ref_mcc(pred: list[int], ref: list[int]) -> float:
    tp = sum(p == 1 and r == 1 for p, r in zip(pred, ref, strict=True))
    tn = sum(p == 0 and r == 0 for p, r in zip(pred, ref, strict=True))
    fp = sum(p == 1 and r == 0 for p, r in zip(pred, ref, strict=True))
    fn = sum(p == 0 and r == 1 for p, r in zip(pred, ref, strict=True))
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if den == 0 else (tp * tn - fp * fn) / den


def ref_f1(pred: list[int], ref: list[int]) -> float:
    tp = sum(p == 1 and r == 1 for p, r in zip(pred, ref, strict=True))
    fp = sum(p == 1 and r == 0 for p, r in zip(pred, ref, strict=True))
    fn = sum(p == 0 and r == 1 for p, r in zip(pred, ref, strict=True))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def ref_pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1  # average rank of ties
        i = j + 1
    return out


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_match_reference_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 2, 50).tolist()
    pred = rng.integers(0, 2, 50).tolist()
    matches = sum(p == r for p, r in zip(pred, ref, strict=True))
    assert metrics.accuracy(pred, ref) == pytest.approx(matches / 50, abs=TOL)
    assert metrics.f1(pred, ref) == pytest.approx(ref_f1(pred, ref), abs=TOL)
    assert metrics.mcc(pred, ref) == pytest.approx(ref_mcc(pred, ref), abs=TOL)


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_reference_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0, 5, 40).round(1).tolist()  # rounding creates ties, as STS-B's labels have
    pred = (np.asarray(ref) + rng.normal(0, 1.5, 40)).tolist()
    assert metrics.pearson(pred, ref) == pytest.approx(ref_pearson(pred, ref), abs=1e-9)
    assert metrics.spearman(pred, ref) == pytest.approx(ref_pearson(ranks(pred), ranks(ref)), abs=1e-9)


def test_known_values() -> None:
    assert metrics.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75, abs=TOL)
    # tp=2 fp=1 fn=1 -> F1 = 4/6
    assert metrics.f1([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(2 / 3, abs=TOL)
    assert metrics.mcc([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0, abs=TOL)
    assert metrics.mcc([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0, abs=TOL)
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0, abs=TOL)
    assert metrics.spearman([1, 2, 3], [1, 10, 100]) == pytest.approx(1.0, abs=TOL)


def test_degenerate_cases_are_defined_or_explained() -> None:
    assert metrics.mcc([1, 1, 1], [1, 0, 1]) == 0.0  # constant predictions: MCC 0, as GLUE's scorer
    assert metrics.f1([0, 0, 0], [1, 0, 1]) == 0.0  # no positive prediction
    with pytest.raises(ValueError, match="all predictions are equal"):
        metrics.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 2"):
        metrics.spearman([1.0], [1.0])


def test_compute_metrics_for_trainer_scales_to_percent_and_takes_argmax() -> None:
    fn = metrics.build_compute_metrics(["accuracy", "f1"], regression=False)
    logits = np.array([[2.0, 0.1], [0.1, 3.0], [0.5, 0.4], [0.0, 1.0]])  # argmax: 0 1 0 1
    out = fn(SimpleNamespace(predictions=logits, label_ids=np.array([0, 1, 1, 1])))
    assert out["accuracy"] == pytest.approx(75.0, abs=1e-9)
    assert out["f1"] == pytest.approx(100 * 2 * 2 / (2 * 2 + 0 + 1), abs=1e-9)


def test_compute_metrics_for_regression_uses_the_scores() -> None:
    fn = metrics.build_compute_metrics(["pearson", "spearman"], regression=True)
    scores = np.array([[0.1], [0.5], [0.4], [0.9]])
    out = fn(SimpleNamespace(predictions=(scores,), label_ids=np.array([0.0, 2.0, 1.0, 5.0])))
    assert out["spearman"] == pytest.approx(100.0, abs=1e-9)
    assert out["pearson"] == pytest.approx(100 * ref_pearson([0.1, 0.5, 0.4, 0.9], [0.0, 2.0, 1.0, 5.0]), abs=1e-9)


def test_unknown_metric_fails_when_built() -> None:
    with pytest.raises(KeyError, match="accuracy"):
        metrics.build_compute_metrics(["acc"], regression=False)


def test_mean() -> None:
    assert metrics.mean({"a": 80.0, "b": 82.0}) == pytest.approx(81.0, abs=TOL)
    with pytest.raises(ValueError):
        metrics.mean([])
