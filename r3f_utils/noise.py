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

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from r3f_utils.r3f import NOISE_TYPES


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


@contextmanager
def noised_input_embeddings(
    model: nn.Module,
    *,
    eps: float,
    noise_type: str,
    detach: bool,
    rows: slice | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[None]:
    """Within the block, forward passes of ``model`` see noised encoder input embeddings.

    Args:
        model: a Hugging Face model (anything with ``get_input_embeddings()``).
        eps, noise_type: the noise, see :func:`sample_noise`.
        detach: fairseq's classification criterion detaches the noised copy (``emb.detach() + z``): the
            embedding matrix then gets no gradient through it. Its seq2seq criterion does not.
        rows: noise only these batch rows (the noised half of a doubled batch); default all rows.
        generator: the random generator the noise is drawn from; default the global RNG.

    The hook is removed on exit, also when the forward raises. ``noise_type="none"`` (the released fairseq
    RoBERTa path) installs no hook: passes inside the block are plain clean passes, embeddings not detached.
    """
    if noise_type == "none":
        yield
        return
    encoder = _encoder_of(model)
    embeddings = _token_embeddings(encoder if encoder is not None else model)
    if embeddings is None and encoder is not None:
        embeddings = _token_embeddings(model)
    if embeddings is None:
        raise ValueError(f"{type(model).__name__} has no input embedding module (get_input_embeddings() returned "
                         "None); R3F adds its noise to the token embeddings")
    scale = getattr(embeddings, "embed_scale", 1.0)  # fairseq noises before embed_scale; HF scales inside
    scale = float(scale) if not isinstance(scale, torch.Tensor) else float(scale.item())
    in_encoder = [encoder is None]

    def add_noise(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not in_encoder[0]:
            return None
        target = output if rows is None else output[rows]
        noised = (target.detach() if detach else target) + sample_noise(target, eps, noise_type, generator) * scale
        if rows is None:
            return noised
        out = output.clone()
        out[rows] = noised
        return out

    with ExitStack() as stack:
        if encoder is not None:
            def enter(*_args: object) -> None:
                in_encoder[0] = True

            def leave(*_args: object) -> None:
                in_encoder[0] = False

            stack.callback(encoder.register_forward_pre_hook(enter).remove)
            stack.callback(encoder.register_forward_hook(leave).remove)
        stack.callback(embeddings.register_forward_hook(add_noise).remove)
        yield
