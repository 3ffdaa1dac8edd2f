"""Pin smoke expectations: write the values of a smoke batch into the rows' ``smoke.expected`` blocks.

The registry is edited as text, in place, so that its comments, anchors and layout stay as they are: only the
flow mapping after ``expected:`` of each pinned row is rewritten. The edited text is validated before it
replaces the file (atomically). Pin only after a change that is *meant* to move the smoke values, and say
why in the commit: the whole point of the pins is that CI fails when they move by accident.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from .atomic import OutputError, atomic_write_text, describe_os_error
from .checker import check
from .layout import BATCH_MANIFEST, batch_folder, batch_of, run_seed
from .registry import RegistryRow, load_registry
from .results import ResultRecord
from .runner import missing_manifest

__all__ = ["PinError", "check_pinnable", "pin_smoke_expectations", "with_experiment_siblings"]

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
                       "smoke: {expected: {accuracy: 0.0}, tolerance: 0.01}, then pin again")
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
    check_pinnable(records, rows)
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
    _replace_validated(path, text)
    return by_row


def _replace_validated(path: Path, text: str) -> None:
    """Validate ``text`` as a registry, then replace ``path`` with it atomically; no temporary file is left
    behind, whatever fails (invalid text, disk full, read-only folder)."""
    tmp = path.with_name(f".{path.name}.pin-{os.getpid()}.tmp")
    try:
        atomic_write_text(tmp, text)
        load_registry(tmp, check_notebooks=False)
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise OutputError(describe_os_error(path, err)) from err
    except OutputError as err:
        raise PinError(f"{err}; the registry is unchanged") from err
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def check_pinnable(records: Sequence[ResultRecord], rows: Sequence[RegistryRow]) -> None:
    """Refuse runs made with other parameters than the rows' smoke parameters: a run outside a batch of
    ``reproduce`` (no ``batch.json`` to show how it ran), a batch started with ``--set`` (its ``batch.json``
    records the overrides), or a results.json whose parameters differ from the row's."""
    experiments = {r.experiment: r for r in rows} | {r.id: r for r in rows}
    for rec in records:
        row = experiments.get(rec.experiment)
        if rec.profile != "smoke" or row is None:
            continue
        run = rec.path.parent
        batch = batch_of(run)
        if batch is None:
            raise PinError(f"cannot pin {rec.path}: " + missing_manifest(
                batch_folder(run) if run_seed(run) is not None else run,
                "pins come only from a batch whose batch.json shows it ran the registry's own smoke parameters: "
                f"re-run `reproduce --rows {row.id}` (without --set), then pin with --results <that batch folder>"))
        try:
            overrides = json.loads((batch / BATCH_MANIFEST).read_text(encoding="utf-8")).get("overrides") or {}
        except (OSError, ValueError):
            overrides = {}
        if overrides:
            shown = " ".join(f"--set {k}={v}" for k, v in overrides.items())
            raise PinError(f"{rec.path}: the batch ran with {shown}; pins must come from the registry's own "
                           "smoke parameters: rerun `reproduce` without --set, then pin that batch")
        for key, value in row.parameters_for("smoke").items():
            if value is not None and key in rec.parameters and rec.parameters[key] != value:
                raise PinError(f"{rec.path}: run with {key}={rec.parameters[key]!r}, the registry's smoke parameters "
                               f"say {key}={value!r}; pin only runs made with the registry's parameters")


def with_experiment_siblings(selected: Sequence[RegistryRow], rows: Sequence[RegistryRow]) -> list[RegistryRow]:
    """``selected`` plus every row fed by the same experiment (one run gives both; pin them together)."""
    experiments = {r.experiment for r in selected}
    return [r for r in rows if r in selected or (r.experiment in experiments and r.role == "target")]
