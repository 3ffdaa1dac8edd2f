"""Pin smoke expectations: write the values of a smoke batch into the rows' ``smoke.expected`` blocks.

The registry is edited as text, in place, so that its comments, anchors and layout stay as they are: only the
flow mapping after ``expected:`` of each pinned row is rewritten. The edited text is validated before it
replaces the file (atomically). Pin only after a change that is *meant* to move the smoke values, and say
why in the commit: the whole point of the pins is that CI fails when they move by accident.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .checker import check
from .registry import RegistryError, RegistryRow, load_registry
from .results import ResultRecord

__all__ = ["PinError", "pin_smoke_expectations"]

_ROW_START = re.compile(r"^\s*- id:\s*(\S+)\s*$", re.MULTILINE)
_EXPECTED = re.compile(r"expected:\s*\{")


class PinError(ValueError):
    """The smoke values cannot be pinned (no runs, no ``expected:`` block to rewrite, a metric missing)."""


def _format(value: float, decimals: int) -> str:
    text = f"{round(value, decimals):.{decimals}f}".rstrip("0").rstrip(".")
    return text if "." in text else f"{text}.0" if text not in {"0", "-0"} else "0"


def _row_span(text: str, row_id: str) -> tuple[int, int]:
    starts = [(m.group(1), m.start()) for m in _ROW_START.finditer(text)]
    for i, (rid, start) in enumerate(starts):
        if rid == row_id:
            end = starts[i + 1][1] if i + 1 < len(starts) else len(text)
            return start, end
    raise PinError(f"row {row_id!r} not found as '- id: {row_id}' in the registry text")


def _replace_expected(text: str, row_id: str, mapping: str) -> str:
    start, end = _row_span(text, row_id)
    block = text[start:end]
    match = _EXPECTED.search(block)
    if match is None:
        raise PinError(f"row {row_id!r} has no 'expected: {{...}}' in its smoke block; add one, e.g. "
                       "smoke: {<<: *glue_smoke, expected: {accuracy: 0.0}, tolerance: 0.01}, then pin again")
    close = block.index("}", match.end())
    new_block = block[: match.start()] + f"expected: {{{mapping}}}" + block[close + 1 :]
    return text[:start] + new_block + text[end:]


def pin_smoke_expectations(
    registry_path: str | Path,
    records: Sequence[ResultRecord],
    rows: Sequence[RegistryRow],
    *,
    decimals: int = 4,
) -> dict[str, dict[str, tuple[float | None, float]]]:
    """Pin the smoke values of ``records`` for ``rows``; returns row → metric → (old, new).

    Rows without smoke runs are left alone; a row whose runs lack one of its metrics is an error.
    """
    result = check(rows, records, "smoke")
    by_row: dict[str, dict[str, tuple[float | None, float]]] = {}
    for v in result.verdicts:
        if v.verdict == "missing" and v.reproduced is None:
            continue  # no runs of this row in the batch
        if v.verdict == "invalid" or v.reproduced is None:
            raise PinError(f"cannot pin {v.row}.{v.metric}: {v.reason or v.verdict}")
        old = next(r for r in rows if r.id == v.row).smoke.expected.get(v.metric)
        by_row.setdefault(v.row, {})[v.metric] = (old, v.reproduced)
    if not by_row:
        raise PinError("no smoke runs of the selected rows among the results")
    path = Path(registry_path)
    text = path.read_text(encoding="utf-8")
    for row_id, values in by_row.items():
        mapping = ", ".join(f"{metric}: {_format(new, decimals)}" for metric, (_, new) in values.items())
        text = _replace_expected(text, row_id, mapping)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, suffix=".yaml", delete=False) as tmp:
        tmp.write(text)
    try:
        load_registry(tmp.name, check_notebooks=False)
    except RegistryError:
        os.unlink(tmp.name)
        raise
    os.replace(tmp.name, path)
    return by_row
