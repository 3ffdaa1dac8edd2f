"""The instruction sets of the sft family (beyond the paper): their Hub ids and which fields hold what.

Torch-free, so that the families' table (:mod:`r3f_utils.families`) can name the datasets a run downloads;
:mod:`r3f_utils.experiments.sft` loads and formats them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SFT_DATASETS", "SFTDataset"]


@dataclass(frozen=True)
class SFTDataset:
    """An instruction set on the Hub: its id and which fields hold the instruction, the optional input, the answer."""

    hub_id: str
    instruction: str
    input: str
    output: str


SFT_DATASETS: dict[str, SFTDataset] = {
    "alpaca_cleaned": SFTDataset("yahma/alpaca-cleaned", "instruction", "input", "output"),
    "dolly": SFTDataset("databricks/databricks-dolly-15k", "instruction", "context", "response"),
}
