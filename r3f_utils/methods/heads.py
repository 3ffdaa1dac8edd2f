"""What every custom Trainer loss of this package needs: the options it cannot share a run with, what kind of head
the model has, and what to divide the loss by."""

from __future__ import annotations

from typing import Any

from torch import nn


def check_method_config(trainer: Any, config: Any, config_type: type, method: str, keyword: str) -> None:
    """Refuse a config of the wrong type, and (when the method is on) the Trainer options it cannot share a run
    with: NEFTune (its noise would hit every pass of the method) and ``compute_loss_func`` (the method computes
    the loss)."""
    if config is not None and not isinstance(config, config_type):
        raise TypeError(f"{keyword} must be a {config_type.__name__} instance or None, got {type(config).__name__}")
    if config is None:
        return
    if (getattr(trainer.args, "neftune_noise_alpha", None) is not None
            and not getattr(config, "with_trainer_neftune", False)):
        hint = (f", or, to run {method}'s KL with NEFTune's noise, {keyword}=R3FConfig(noise_type='neftune'), or, "
                "for exactly this combination, R3FConfig(with_trainer_neftune=True)") if method == "R3F" else ""
        raise ValueError(f"{method} and NEFTune both perturb the input embeddings, and NEFTune's noise would hit "
                         f"every {method} pass: set TrainingArguments(neftune_noise_alpha=None) or {keyword}=None"
                         + hint)
    if getattr(trainer, "compute_loss_func", None) is not None:
        raise ValueError(f"{method} computes its own loss: do not pass compute_loss_func together with {keyword}")


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
