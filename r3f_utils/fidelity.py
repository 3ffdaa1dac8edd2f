"""The paper profile's fidelity choices (issue 18), shown by ``ls`` and checked by ``validate --profile paper``.

Each choice is a notebook parameter with the value the paper profile must run and where that value comes from:

* ``head_dropout`` 0.0: fairseq RoBERTa/XLM-R ``pooler_dropout`` (HF's head would use the hidden dropout, 0.1);
* ``weight_decay_scope`` ``all``: fairseq's Adam decays every parameter (HF groups exclude biases/LayerNorm);
* SMART ``smart_bregman_mu`` 1.0: the SMART paper's Bregman proximal point term (the ``*_mtdnn`` rows: 0.0, the
  official mt-dnn release);
* probes on standardised features with the learning rate chosen from a grid on held-out training data.

A paper-profile row of a notebook that trains a classification head must state each choice (the value above, or
a deliberate other value); a row that leaves one out runs the notebook's default silently, which ``validate``
reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from r3f_utils.families import family_of
from r3f_utils.registry import RegistryRow

__all__ = ["FIDELITY_CHOICES", "fidelity_problems", "fidelity_summary"]

# parameter -> (paper-profile value, source); which notebooks / methods it concerns
FIDELITY_CHOICES: dict[str, tuple[Any, str]] = {
    "head_dropout": (0.0, "fairseq pooler_dropout"),
    "weight_decay_scope": ("all", "fairseq Adam: every parameter"),
    "smart_bregman_mu": (1.0, "SMART paper (mt-dnn release: 0)"),
    "probe_standardize": (True, "issue 18: scale is not quality"),
    "probe_learning_rate_grid": ([1e-4, 1e-3, 1e-2], "chosen on held-out training data"),
}


def _concerns(name: str, family: str, params: Mapping[str, Any]) -> bool:
    if family not in ("glue", "xnli", "probing", "wall_time"):  # the families that train a classification head
        return False
    if name == "smart_bregman_mu":
        return params.get("method") == "smart"
    if name.startswith("probe_"):
        return family == "probing"
    return True


def _notebook(row: RegistryRow) -> str:
    """The row's family (:mod:`r3f_utils.families`), '' for a notebook outside the table."""
    family = family_of(row.notebook)
    return family.name if family is not None else ""


def fidelity_summary(row: RegistryRow, profile: str = "paper") -> str:
    """``head_dropout=0.0 weight_decay_scope=all ...``: the fidelity choices ``row`` runs in ``profile``
    ('' for rows they do not concern); a choice left to the notebook's default shows as ``name=default``."""
    if row.role != "target":
        return ""
    params = row.parameters_for(profile)
    shown = []
    for name in FIDELITY_CHOICES:
        if _concerns(name, _notebook(row), {**row.parameters_for("paper"), **params}):
            value = params.get(name, "default")
            if isinstance(value, (list, tuple)):
                value = "[" + ",".join(format(v, "g") for v in value) + "]"
            shown.append(f"{name}={value}")
    return " ".join(shown)


def fidelity_problems(row: RegistryRow) -> list[str]:
    """The fidelity choices a paper-profile target row leaves to the notebook's default."""
    if row.role != "target":
        return []
    params = row.parameters_for("paper")
    return [f"{name} is not set: the paper profile runs {value!r} ({source}); set it in the row (or in its "
            "family's paper values, r3f_utils/families.py)"
            for name, (value, source) in FIDELITY_CHOICES.items()
            if _concerns(name, _notebook(row), params) and name not in params]
