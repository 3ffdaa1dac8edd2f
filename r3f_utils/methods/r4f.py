"""R4F: R3F plus spectral normalisation of the classification head (Lip{g} ≤ 1).

fairseq's ``--spectral-norm-classification-head`` wraps only the head's last Linear (``out_proj``) with
``torch.nn.utils.spectral_norm``; the paper's text says "all the weight matrices of g". Both are offered:
``scope="out_proj"`` (official, default) and ``scope="all"``.

How σ is estimated (``spectral_norm=``):

* ``"hook"`` (official, default): ``torch.nn.utils.spectral_norm`` as fairseq calls it: random ``u``/``v``, no
  warm-up, one power iteration in every training-mode forward. R3F's ``pass_mode="separate"`` runs two forwards
  per step (two iterations, the clean and the noised pass each normalised by its own estimate), as fairseq does;
  ``pass_mode="concat"`` runs one forward, so one iteration per step.
* ``"parametrization"``: ``torch.nn.utils.parametrizations.spectral_norm``: 15 power iterations at
  registration (warm-up), then one per training forward (same pass-mode dependence).

A spectrally normalised head survives ``save_pretrained`` as its parametrization tensors, but a plain
``from_pretrained`` silently re-initialises it. :func:`save_r4f_model` records the R4F scope in the config
and :func:`load_r4f_model` rebuilds the parametrization before loading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import spectral_norm as hook_spectral_norm
from torch.nn.utils.parametrizations import spectral_norm as parametrization_spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

R4F_SCOPES = ("out_proj", "all")
SPECTRAL_NORMS = ("hook", "parametrization")  # official (torch.nn.utils.spectral_norm) first
# attribute names of the sequence-classification head in BERT/RoBERTa/XLM-R (`classifier`) and BART
_HEAD_ATTRIBUTES = ("classifier", "classification_head")
_CONFIG_KEY = "r4f_scope"
_IMPL_KEY = "r4f_spectral_norm"


def classification_head(model: nn.Module) -> nn.Module:
    """The sequence-classification head (RoBERTa/XLM-R/BERT ``classifier``, BART ``classification_head``)."""
    for name in _HEAD_ATTRIBUTES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    raise ValueError(
        f"{type(model).__name__} has no classification head (no attribute {' or '.join(_HEAD_ATTRIBUTES)}); "
        "R4F is defined for sequence-classification models such as RobertaForSequenceClassification, "
        "XLMRobertaForSequenceClassification, BertForSequenceClassification or BartForSequenceClassification "
        "(the paper: 'R4F cannot be applied directly to generation tasks')"
    )


def _head_linears(head: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, module) for name, module in head.named_modules() if isinstance(module, nn.Linear)]


def _hook_of(linear: nn.Module) -> SpectralNorm | None:
    return next((h for h in linear._forward_pre_hooks.values() if isinstance(h, SpectralNorm)), None)


def is_spectral_normed(linear: nn.Module) -> bool:
    """True when ``linear.weight`` is spectrally normalised (either implementation)."""
    return parametrize.is_parametrized(linear, "weight") or _hook_of(linear) is not None


def spectral_normed_modules(model: nn.Module) -> list[str]:
    """Names of the modules of ``model`` whose weight is spectrally normalised."""
    return [name for name, module in model.named_modules() if is_spectral_normed(module)]


def apply_r4f(
    model: nn.Module, scope: str = "out_proj", n_power_iterations: int = 1, spectral_norm: str = "hook"
) -> list[str]:
    """Put spectral norm on the classification head of ``model`` in place; returns the wrapped module names.

    ``scope="out_proj"``: the head's last Linear (official). ``scope="all"``: every Linear of the head.
    ``spectral_norm="hook"``: ``torch.nn.utils.spectral_norm`` (official: no warm-up, one power iteration per
    training forward); ``"parametrization"``: ``torch.nn.utils.parametrizations.spectral_norm`` (15 warm-up
    iterations at registration). Applying it twice is an error (the head is already normalised).
    """
    if scope not in R4F_SCOPES:
        raise ValueError(f"apply_r4f scope must be one of {R4F_SCOPES}, got {scope!r}")
    if spectral_norm not in SPECTRAL_NORMS:
        raise ValueError(f"apply_r4f spectral_norm must be one of {SPECTRAL_NORMS}, got {spectral_norm!r}")
    head = classification_head(model)
    linears = _head_linears(head)
    if not linears:
        raise ValueError(f"the classification head of {type(model).__name__} ({type(head).__name__}) "
                         "has no Linear layer")
    chosen = linears if scope == "all" else linears[-1:]
    for name, linear in chosen:
        if is_spectral_normed(linear):
            raise ValueError(f"head module {name or type(head).__name__!r} is already spectrally normalised; "
                             "apply_r4f once")
        wrap = hook_spectral_norm if spectral_norm == "hook" else parametrization_spectral_norm
        wrap(linear, n_power_iterations=n_power_iterations)
    if hasattr(model, "config"):
        setattr(model.config, _CONFIG_KEY, scope)
        setattr(model.config, _IMPL_KEY, spectral_norm)
    head_name = next(n for n in _HEAD_ATTRIBUTES if getattr(model, n, None) is head)
    return [f"{head_name}.{name}" if name else head_name for name, _ in chosen]


def r4f_scope(model: nn.Module) -> str | None:
    """The R4F scope recorded in ``model.config`` by :func:`apply_r4f`, or None."""
    return getattr(getattr(model, "config", None), _CONFIG_KEY, None)


def _effective_weight(linear: nn.Linear) -> torch.Tensor:
    """The weight an eval-mode forward uses (for the hook: ``weight_orig`` over the current σ estimate)."""
    hook = _hook_of(linear)
    return linear.weight if hook is None else hook.compute_weight(linear, do_power_iteration=False)


def head_spectral_norms(model: nn.Module) -> dict[str, float]:
    """Largest singular value of each (effective) Linear weight of the classification head."""
    head = classification_head(model)
    with torch.no_grad():
        return {name: float(torch.linalg.matrix_norm(_effective_weight(lin).float(), ord=2))
                for name, lin in _head_linears(head)}


def save_r4f_model(model: nn.Module, directory: str | Path, **save_kwargs: object) -> Path:
    """``model.save_pretrained(directory)`` with the R4F scope recorded so that :func:`load_r4f_model` restores it."""
    scope = r4f_scope(model)
    if scope is None:
        raise ValueError("save_r4f_model: the model has no R4F head (call apply_r4f first, or use save_pretrained)")
    model.save_pretrained(directory, **save_kwargs)
    return Path(directory)


def load_r4f_model(directory: str | Path, model_class: type | None = None, **kwargs: object) -> nn.Module:
    """Reload a model saved by :func:`save_r4f_model` (or a Trainer checkpoint of an R4F model).

    Builds the architecture from the saved config, re-applies spectral norm with the saved scope, then loads
    the saved tensors strictly, so the reloaded model gives the same logits.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.modeling_utils import load_state_dict

    directory = Path(directory)
    config = AutoConfig.from_pretrained(directory)
    scope = getattr(config, _CONFIG_KEY, None)
    if scope is None:
        raise ValueError(f"{directory} holds no R4F model ({_CONFIG_KEY!r} missing from config.json); "
                         "load it with from_pretrained")
    model_class = model_class or AutoModelForSequenceClassification
    model = model_class.from_config(config, **kwargs)
    # models saved before the implementation was recorded used the parametrization
    apply_r4f(model, scope=scope, spectral_norm=getattr(config, _IMPL_KEY, None) or "parametrization")
    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"no weights (*.safetensors or pytorch_model*.bin) in {directory}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_state_dict(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = _untied(model, missing, loaded=set(state))
    if missing or unexpected:
        raise ValueError(f"{directory}: weights do not match an R4F {type(model).__name__}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model


def _untied(model: nn.Module, missing: list[str], loaded: set[str]) -> list[str]:
    """The missing keys that are not tied to (the same tensor as) a loaded one, e.g. BART's embed_tokens."""
    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers(remove_duplicate=False))
    loaded_ptrs = {tensors[k].data_ptr() for k in loaded if k in tensors}
    return [k for k in missing if k not in tensors or tensors[k].data_ptr() not in loaded_ptrs]


def read_r4f_scope(directory: str | Path) -> str | None:
    """The R4F scope saved in ``directory/config.json``, or None for a plain model."""
    config = json.loads((Path(directory) / "config.json").read_text())
    return config.get(_CONFIG_KEY)
