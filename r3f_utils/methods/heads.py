"""Two facts every custom Trainer loss needs: what kind of head the model has, and what to divide the loss by."""

from __future__ import annotations

from typing import Any

from torch import nn


def is_regression_head(model: nn.Module, method: str) -> bool:
    """True for a regression head (``num_labels == 1`` or ``problem_type="regression"``); multi-label is refused."""
    config = getattr(model, "config", None)
    problem = getattr(config, "problem_type", None)
    if problem == "multi_label_classification":
        raise ValueError(f"{method} is defined for single-label classification and regression heads, "
                         "not multi_label_classification")
    return problem == "regression" or getattr(config, "num_labels", 2) == 1


def loss_denominator(trainer: Any, num_items_in_batch: Any) -> Any:
    """``num_items_in_batch`` exactly when the Trainer will not divide the loss by the accumulation steps
    (its own rule in ``training_step``), else None: normalise by this micro-batch's size."""
    flag = getattr(trainer, "loss_is_scaled_for_ga", None)
    scaled = flag if flag is not None else (
        bool(getattr(trainer, "model_accepts_loss_kwargs", False)) and num_items_in_batch is not None)
    return num_items_in_batch if scaled and num_items_in_batch is not None else None
