"""Names that both sides of the package use, each defined once: the profiles and R3F's noise types.

No imports at all: the method layer (:mod:`r3f_utils.methods.r3f`, torch only) and the torch-free machinery
(:mod:`r3f_utils.params`, the registry, the runner) both read this module.
"""

from __future__ import annotations

__all__ = ["NOISE_TYPES", "PROFILES"]

# smoke: tiny models + fixtures (CI); cpu: the pip-shipped pretrained MiniLM on CPU; paper: the paper's recipes
PROFILES = ("smoke", "cpu", "paper")
# R3FConfig.noise_type: uniform U(-eps, eps) | normal N(0, eps) | none (the released RoBERTa code path: no noise)
# | neftune (beyond the paper: NEFTune's alpha / sqrt(L d) scale, causal LMs). A family's parameter class allows
# a subset (r3f_utils.params), derived from this tuple.
NOISE_TYPES = ("uniform", "normal", "none", "neftune")
