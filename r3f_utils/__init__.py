"""r3f-repro: R3F/R4F fine-tuning (Aghajanyan et al., ICLR 2021) for Hugging Face models.

Public names are imported lazily, so that ``python -m r3f_utils check`` and the registry tools do not pay
for importing torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # the R3F objective (pure torch)
    "R3FConfig": "methods.r3f",
    "symmetric_kl": "methods.r3f",
    "r3f_classification_loss": "methods.r3f",
    "r3f_seq2seq_loss": "methods.r3f",
    "r3f_causal_lm_loss": "methods.r3f",
    # noise on the input embeddings
    "sample_noise": "methods.noise",
    "neftune_noise": "methods.noise",
    "noised_input_embeddings": "methods.noise",
    "perturbed_input_embeddings": "methods.noise",
    "transformed_input_embeddings": "methods.noise",
    # R4F
    "apply_r4f": "methods.r4f",
    "save_r4f_model": "methods.r4f",
    "load_r4f_model": "methods.r4f",
    # SMART and FreeLB (the adversarial baselines of Tables 1-2 and Figure 1)
    "SMARTConfig": "methods.smart",
    "SMARTTrainer": "methods.smart",
    "smart_loss": "methods.smart",
    "smart_ascent_step": "methods.smart",
    "smart_adversarial_logits": "methods.smart",
    "smoothness_divergence": "methods.smart",
    "FreeLBConfig": "methods.freelb",
    "FreeLBTrainer": "methods.freelb",
    "freelb_ascent_step": "methods.freelb",
    "freelb_initial_delta": "methods.freelb",
    # Trainer integration
    "R3FTrainer": "methods.trainers",
    "R3FSeq2SeqTrainer": "methods.trainers",
    "R3FLossMixin": "methods.trainers",
    "R3FSFTTrainer": "methods.sft",  # TRL SFTTrainer + R3F for causal LMs (the [llm] extra)
    "FairseqSeq2SeqCollator": "methods.collators",
    # registry, results, checker
    "load_registry": "registry",
    "select_rows": "registry",
    "RegistryRow": "registry",
    "RegistryError": "registry",
    "METRIC_NAMES": "registry",
    "AGGREGATIONS": "registry",
    "write_results": "results",
    "read_results": "results",
    "ResultRecord": "results",
    "ResultsError": "results",
    "check": "checker",
    "Verdict": "checker",
    "write_report": "report",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'r3f_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
