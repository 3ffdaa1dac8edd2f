"""Which parameters weight decay applies to: fairseq's rule (every parameter) or the Hugging Face Trainer's.

fairseq's ``Adam`` (``fairseq/optim/adam.py``, the optimiser of every RXF, RoBERTa, BART and FreeLB recipe)
has one parameter group: ``--weight-decay`` is applied (decoupled, as AdamW) to **every** parameter, biases
and LayerNorm weights included. ``transformers.Trainer`` puts biases and LayerNorm/RMSNorm weights into a
group without decay (``Trainer.get_decay_parameter_names``). The scope is a named option:

* ``"all"``: fairseq's grouping (the paper profile's default);
* ``"no_bias_norm"``: the Trainer's grouping (the notebooks' default, so the smoke pins stay as they were).
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["WEIGHT_DECAY_SCOPES", "apply_weight_decay_scope", "decayed_parameter_names"]

WEIGHT_DECAY_SCOPES = ("all", "no_bias_norm")


def decayed_parameter_names(trainer: Any, model: nn.Module, scope: str) -> list[str]:
    """The names of ``model``'s parameters that ``scope`` decays (``trainer``: the Trainer's own rule)."""
    if scope not in WEIGHT_DECAY_SCOPES:
        raise ValueError(f"weight_decay_scope={scope!r} is invalid: choose one of {list(WEIGHT_DECAY_SCOPES)}")
    if scope == "all":
        return [name for name, _ in model.named_parameters()]
    return list(type(trainer).get_decay_parameter_names(trainer, model))


def apply_weight_decay_scope(trainer: Any, scope: str) -> Any:
    """Make ``trainer``'s optimiser decay the parameters of ``scope``; returns ``trainer``.

    Must run before the optimiser is created (``train()`` creates it). ``"no_bias_norm"`` leaves the
    Trainer untouched.
    """
    if scope not in WEIGHT_DECAY_SCOPES:  # (no probe module built here: that would draw from the seeded RNG)
        raise ValueError(f"weight_decay_scope={scope!r} is invalid: choose one of {list(WEIGHT_DECAY_SCOPES)}")
    if trainer.optimizer is not None:
        raise ValueError("apply_weight_decay_scope: the optimiser already exists; call it before train()")
    if scope == "all":
        trainer.get_decay_parameter_names = lambda model: decayed_parameter_names(trainer, model, scope)
    return trainer
