"""Noise on the input token embeddings, injected by a forward hook on ``model.get_input_embeddings()``.

The hook keeps ``input_ids`` in the call (``BartForSequenceClassification`` pools at EOS from them, and
generation models need them), so one mechanism serves encoders, BART classification and BART/T5 seq2seq.
As in fairseq, the noise lands on the raw token-embedding lookup, before position embeddings, the
embedding LayerNorm and dropout, and only on the **encoder** input. In encoder-decoder models the hook sits
on the encoder's own token-embedding module and is active only while the encoder runs: transformers 5
gives BART/T5 encoder and decoder separate modules with one tied weight, while older versions share one
module between them; the guard makes the decoder call clean in both cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from r3f_utils.methods.r3f import NOISE_TYPES


def sample_noise(
    like: torch.Tensor, eps: float, noise_type: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fresh noise with the shape, dtype and device of ``like``: U(-eps, eps), N(0, eps) (eps = std), or zeros
    for ``"none"``.

    ``generator``: draw from it instead of the global RNG (the trainers give each DDP rank its own).
    """
    if noise_type == "none":
        return torch.zeros_like(like)
    if noise_type == "uniform":
        return torch.empty_like(like).uniform_(-eps, eps, generator=generator)
    if noise_type == "normal":
        return torch.empty_like(like).normal_(0.0, eps, generator=generator)
    if noise_type == "neftune":
        raise ValueError("noise_type 'neftune' scales with the sequence length: draw it with neftune_noise()")
    raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")


def _encoder_of(model: nn.Module) -> nn.Module | None:
    """The encoder stack of an encoder-decoder model, else None (encoder-only models are all 'encoder')."""
    config = getattr(model, "config", None)
    if not getattr(config, "is_encoder_decoder", False):
        return None
    base = getattr(model, "base_model", model)
    for candidate in (model, base):
        encoder = getattr(candidate, "encoder", None)
        if isinstance(encoder, nn.Module):
            return encoder
    get_encoder = getattr(model, "get_encoder", None)
    if callable(get_encoder):
        return get_encoder()
    raise ValueError(f"{type(model).__name__} is encoder-decoder but its encoder could not be found; "
                     "R3F noises the encoder input only and needs `model.encoder` or `model.get_encoder()`")


def _token_embeddings(module: nn.Module) -> nn.Module | None:
    get_embeddings = getattr(module, "get_input_embeddings", None)
    embeddings = get_embeddings() if callable(get_embeddings) else getattr(module, "embed_tokens", None)
    return embeddings if isinstance(embeddings, nn.Module) else None


EMBEDDING_SITES = ("word_embeddings", "embeddings_output")


def perturbation_module(model: nn.Module, site: str) -> tuple[nn.Module, nn.Module | None, str]:
    """The module whose output is perturbed, the encoder stack (encoder-decoder models) and a label for errors.

    ``word_embeddings``: the encoder's token-embedding lookup (R3F, FreeLB and the SMART paper's ``x``).
    ``embeddings_output``: the whole embedding block of an encoder-only model (word + position + type
    embeddings, LayerNorm, dropout: ``model.base_model.embeddings``), where mt-dnn's SMART code perturbed
    until 2021.
    """
    if site not in EMBEDDING_SITES:
        raise ValueError(f"site must be one of {EMBEDDING_SITES}, got {site!r}")
    encoder = _encoder_of(model)
    if site == "embeddings_output":
        block = getattr(getattr(model, "base_model", model), "embeddings", None)
        if encoder is not None or not isinstance(block, nn.Module):
            raise ValueError(f"site='embeddings_output' needs an encoder-only model with `base_model.embeddings` "
                             f"(BERT, RoBERTa, XLM-R); {type(model).__name__} has none: use site='word_embeddings'")
        return block, None, site
    embeddings = _token_embeddings(encoder if encoder is not None else model)
    if embeddings is None and encoder is not None:
        embeddings = _token_embeddings(model)
    if embeddings is None:
        raise ValueError(f"{type(model).__name__} has no input embedding module (get_input_embeddings() returned "
                         "None); the noise/perturbation is added to the token embeddings")
    return embeddings, encoder, site


def check_perturbation_site(model: nn.Module, site: str, method: str) -> None:
    """Raise a ValueError naming ``model`` (or ``site``) when ``method`` cannot perturb ``model`` at ``site``."""
    try:
        get_embeddings = getattr(model, "get_input_embeddings", None)
        embeddings = get_embeddings() if callable(get_embeddings) else None
    except NotImplementedError:
        embeddings = None
    if not isinstance(embeddings, nn.Module):
        raise ValueError(f"model: {type(model).__name__} has no input embeddings (get_input_embeddings() gave "
                         f"{type(embeddings).__name__}); {method} perturbs them: use a model with a token-embedding "
                         "module")
    try:
        perturbation_module(model, site)
    except ValueError as err:
        raise ValueError(f"{method}Config.site={site!r}: {err}") from None


@contextmanager
def transformed_input_embeddings(
    model: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor | None], *, site: str = "word_embeddings"
) -> Iterator[None]:
    """Within the block, the encoder's input-embedding output ``e`` is replaced by ``transform(e)``.

    The one hook mechanism behind R3F's noise, SMART's and FreeLB's perturbations: a forward hook on the
    module of ``site`` (see :data:`EMBEDDING_SITES`), active only while the encoder runs in encoder-decoder
    models, removed on exit (also when the forward raises). ``transform`` returning None leaves ``e``.
    """
    module, encoder, _ = perturbation_module(model, site)
    in_encoder = [encoder is None]

    def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        return transform(output) if in_encoder[0] else None

    with ExitStack() as stack:
        if encoder is not None:
            def enter(*_args: object) -> None:
                in_encoder[0] = True

            def leave(*_args: object) -> None:
                in_encoder[0] = False

            stack.callback(encoder.register_forward_pre_hook(enter).remove)
            stack.callback(encoder.register_forward_hook(leave).remove)
        stack.callback(module.register_forward_hook(hook).remove)
        yield


def embedding_scale(model: nn.Module) -> float:
    """``embed_scale`` of the encoder's token embeddings (HF scales inside the module, fairseq noises before)."""
    module, _, _ = perturbation_module(model, "word_embeddings")
    scale = getattr(module, "embed_scale", 1.0)
    return float(scale) if not isinstance(scale, torch.Tensor) else float(scale.item())


@contextmanager
def perturbed_input_embeddings(
    model: nn.Module, delta: torch.Tensor, *, site: str = "word_embeddings", detach: bool = False
) -> Iterator[None]:
    """Within the block, forward passes add the given tensor ``delta`` (B x T x d) to the input embeddings.

    Gradient flows into ``delta`` (make it a leaf with ``requires_grad=True`` to read ``delta.grad``, or
    differentiate with respect to it) and, unless ``detach``, into the embedding weights.
    """

    def add(output: torch.Tensor) -> torch.Tensor:
        if output.shape != delta.shape:
            raise ValueError(f"perturbation shape {tuple(delta.shape)} does not match the input embeddings "
                             f"{tuple(output.shape)}")
        return (output.detach() if detach else output) + delta.to(output.dtype)

    with transformed_input_embeddings(model, add, site=site):
        yield


def neftune_noise(
    like: torch.Tensor,
    alpha: float,
    attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """NEFTune's noise (Jain et al. 2023) for ``(B, T, d)`` embeddings: U(-1, 1) x ``alpha / sqrt(L * d)``.

    With ``attention_mask`` (B x T, 1 = real token), ``L`` is each sequence's own number of real tokens and the
    padded positions stay clean: NEFTune's Algorithm 1 (L = the sequence length) as its authors' training script
    applies it to padded batches. Without it, ``L`` is the padded length ``T`` and every position is noised: the
    ``neftune_noise_alpha`` hook of transformers/TRL and the drop-in ``NEFTune()`` of the authors' README. The
    uniform draw goes through :func:`sample_noise`, so a test can replace the sampler for every noise type.
    """
    if like.dim() != 3:
        raise ValueError(f"NEFTune noise needs (batch, length, width) embeddings, got shape {tuple(like.shape)}")
    unit = sample_noise(like, 1.0, "uniform", generator)
    width = like.size(-1)
    if attention_mask is None:
        return unit * (alpha / math.sqrt(like.size(1) * width))
    if attention_mask.shape != like.shape[:2]:
        raise ValueError(f"attention_mask of shape {tuple(attention_mask.shape)} does not match the embeddings "
                         f"{tuple(like.shape[:2])}")
    mask = attention_mask.to(torch.float32)
    magnitude = alpha / (mask.sum(1).clamp(min=1.0) * width).sqrt()  # (B,), float32
    return unit * (mask * magnitude.unsqueeze(1)).unsqueeze(-1).to(like.dtype)


@contextmanager
def noised_input_embeddings(
    model: nn.Module,
    *,
    eps: float,
    noise_type: str,
    detach: bool,
    rows: slice | None = None,
    generator: torch.Generator | None = None,
    neftune_alpha: float = 5.0,
    attention_mask: torch.Tensor | None = None,
) -> Iterator[None]:
    """Within the block, forward passes of ``model`` see noised encoder input embeddings.

    Args:
        model: a Hugging Face model (anything with ``get_input_embeddings()``).
        eps, noise_type: the noise, see :func:`sample_noise`.
        detach: fairseq's classification criterion detaches the noised copy (``emb.detach() + z``): the
            embedding matrix then gets no gradient through it. Its seq2seq criterion does not.
        rows: noise only these batch rows (the noised half of a doubled batch); default all rows.
        generator: the random generator the noise is drawn from; default the global RNG.
        neftune_alpha, attention_mask: ``noise_type="neftune"`` only, see :func:`neftune_noise` (the
            attention mask of the rows noised, or None for the padded length). NEFTune noises the embedding
            module's output as it is (no ``embed_scale`` correction).

    The hook is removed on exit, also when the forward raises. ``noise_type="none"`` (the released fairseq
    RoBERTa path) installs no hook: passes inside the block are plain clean passes, embeddings not detached.
    """
    if noise_type == "none":
        yield
        return
    scale = embedding_scale(model)  # fairseq noises before embed_scale; HF scales inside

    def add_noise(output: torch.Tensor) -> torch.Tensor:
        target = output if rows is None else output[rows]
        if noise_type == "neftune":
            noise = neftune_noise(target, neftune_alpha, attention_mask, generator)
        else:
            noise = sample_noise(target, eps, noise_type, generator) * scale
        noised = (target.detach() if detach else target) + noise
        if rows is None:
            return noised
        out = output.clone()
        out[rows] = noised
        return out

    with transformed_input_embeddings(model, add_noise):
        yield
