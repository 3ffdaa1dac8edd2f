"""GLUE and XNLI metrics as GLUE defines them, with scikit-learn and scipy only (offline).

``evaluate.load("glue", ...)`` downloads its script from the Hub and fails offline; these functions give the
same numbers from the installed libraries. The functions return fractions (0.912), as scikit-learn does;
:func:`build_compute_metrics` scales them to percent (91.2), the unit the paper prints and the registry uses.

- accuracy: every classification task (MNLI, QQP, RTE, QNLI, MRPC, SST-2, XNLI);
- f1: binary F1 of the positive class (label 1), QQP and MRPC;
- mcc: Matthews correlation, CoLA;
- pearson / spearman: STS-B (regression).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "accuracy",
    "build_compute_metrics",
    "compute_metrics_for",
    "f1",
    "mcc",
    "mean",
    "pearson",
    "predictions_from_logits",
    "spearman",
]

ArrayLike = Sequence[float] | np.ndarray


def accuracy(predictions: ArrayLike, references: ArrayLike) -> float:
    """Fraction of exact matches."""
    return float(skm.accuracy_score(np.asarray(references), np.asarray(predictions)))


def f1(predictions: ArrayLike, references: ArrayLike) -> float:
    """Binary F1 of label 1 (GLUE's F1 for QQP and MRPC); 0.0 when no example is predicted or labelled 1."""
    return float(skm.f1_score(np.asarray(references), np.asarray(predictions), pos_label=1, average="binary",
                              zero_division=0))


def mcc(predictions: ArrayLike, references: ArrayLike) -> float:
    """Matthews correlation coefficient (CoLA); 0.0 when the predictions are constant."""
    return float(skm.matthews_corrcoef(np.asarray(references), np.asarray(predictions)))


def _correlation(fn: Callable[..., Any], predictions: ArrayLike, references: ArrayLike, name: str) -> float:
    x = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(references, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise ValueError(f"{name} needs at least 2 examples, got {x.size}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        # the correlation is undefined (scipy returns NaN with a warning); say why instead of writing NaN
        which = "predictions" if np.ptp(x) == 0 else "references"
        raise ValueError(f"{name} is undefined: all {which} are equal ({x[0] if which == 'predictions' else y[0]}); "
                         "the model has collapsed to a constant or the evaluation set is too small")
    return float(fn(x, y)[0])


def pearson(predictions: ArrayLike, references: ArrayLike) -> float:
    """Pearson correlation (STS-B)."""
    return _correlation(stats.pearsonr, predictions, references, "pearson")


def spearman(predictions: ArrayLike, references: ArrayLike) -> float:
    """Spearman rank correlation (STS-B)."""
    return _correlation(stats.spearmanr, predictions, references, "spearman")


# metric name (as in results.json and the registry) -> function(predictions, references)
METRICS: dict[str, Callable[[ArrayLike, ArrayLike], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
}
HIGHER_IS_BETTER: dict[str, bool] = dict.fromkeys(METRICS, True)


def predictions_from_logits(logits: Any, *, regression: bool) -> np.ndarray:
    """Class ids (argmax) for a classifier, the squeezed scores for a regression head."""
    if isinstance(logits, tuple):  # some models return (logits, hidden_states, ...)
        logits = logits[0]
    array = np.asarray(logits)
    if regression:
        return array.reshape(-1).astype(np.float64)
    return array.argmax(axis=-1)


def compute_metrics_for(names: Sequence[str], predictions: ArrayLike, references: ArrayLike) -> dict[str, float]:
    """``{name: METRICS[name](predictions, references)}`` for each name, with a clear error for unknown names."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    return {name: METRICS[name](predictions, references) for name in names}


def build_compute_metrics(
    names: Sequence[str], *, regression: bool, scale: float = 100.0
) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` function for ``transformers.Trainer`` that returns ``names`` times ``scale``.

    ``scale=100`` gives the numbers as the paper prints them (percent; 91.1, not 0.911), which is the unit of
    the registry and of results.json.

    The Trainer prefixes the keys (``eval_accuracy``); :func:`r3f_utils.experiments.glue.evaluate_glue` strips
    the prefix again at the one boundary where numbers leave the Trainer.
    """
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:  # fail when the Trainer is built, not after the first evaluation
        raise KeyError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")

    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        predictions = predictions_from_logits(eval_prediction.predictions, regression=regression)
        references = np.asarray(eval_prediction.label_ids)
        values = compute_metrics_for(names, predictions, references.reshape(-1) if regression else references)
        return {name: value * scale for name, value in values.items()}

    return compute_metrics


def mean(values: Mapping[str, float] | Sequence[float]) -> float:
    """Arithmetic mean (XNLI's ``accuracy_avg`` over the 15 languages)."""
    items = list(values.values()) if isinstance(values, Mapping) else list(values)
    if not items:
        raise ValueError("mean of no values")
    return math.fsum(items) / len(items)
