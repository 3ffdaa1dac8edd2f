"""Seq2seq batches as fairseq builds them: the decoder input padded with the pad id and masked.

fairseq's ``prev_output_tokens`` is the target shifted right with padding left as padding, and its decoder
masks padded keys in self-attention (``prev_output_tokens.eq(pad)``). ``DataCollatorForSeq2Seq`` instead
shifts the ``-100``-padded labels (so a short target's final ``</s>`` reappears at its first padded decoder
position) and passes no ``decoder_attention_mask``: real positions are unaffected (causal attention), but the
logits at padded positions differ, and the official per-sequence R3F KL sums over those positions too.

One difference remains and is left alone: fairseq's learned positions give every padded position the padding
index's position embedding, transformers' BART numbers positions 0..T-1 regardless of padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import DataCollatorForSeq2Seq

__all__ = ["FairseqSeq2SeqCollator"]


@dataclass
class FairseqSeq2SeqCollator(DataCollatorForSeq2Seq):
    """``DataCollatorForSeq2Seq`` plus fairseq's decoder padding: ``decoder_attention_mask`` from the labels
    (position 0, the decoder start, always kept: T5 starts decoding with the pad id) and the pad id at every
    padded decoder input position.

    Decoder input position ``t`` is real exactly when label ``t`` is (the input is the labels shifted right by
    one, starting with the decoder start token), so the mask is ``labels != label_pad_token_id``.
    """

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        batch = super().__call__(features, return_tensors=return_tensors)
        labels = batch.get("labels")
        if labels is None or not hasattr(labels, "ne"):
            return batch
        mask = labels.ne(self.label_pad_token_id)
        mask[:, 0] = True
        if "decoder_input_ids" in batch:
            pad = getattr(getattr(self.model, "config", None), "pad_token_id", None)
            pad = self.tokenizer.pad_token_id if pad is None else pad
            batch["decoder_input_ids"] = batch["decoder_input_ids"].masked_fill(~mask, pad)
        batch["decoder_attention_mask"] = mask.long()
        return batch
