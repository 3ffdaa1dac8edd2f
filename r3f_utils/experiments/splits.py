"""The three splits of a generation run (summarization, sft): train, validation and the evaluated split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import datasets

__all__ = ["TextSplits"]


@dataclass
class TextSplits:
    """``train``, ``validation`` and ``test``, each with the two text columns named by ``COLUMNS``
    (input, output)."""

    COLUMNS: ClassVar[tuple[str, str]]

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset

    def texts(self) -> list[str]:
        """The training split's inputs and outputs (to train a tiny smoke model's tokenizer)."""
        first, second = self.COLUMNS
        return [*self.train[first], *self.train[second]]

    def sizes(self) -> dict[str, int]:
        """Examples per split."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}
