"""The ``results.json`` a notebook run writes: schema, atomic writer and reader.

Every run writes exactly one file, ``<run folder>/results.json``; the checker and the report read nothing
else. The schema is versioned (``schema_version``); a reader refuses versions it does not know.
No torch/transformers import here: versions are read with ``importlib.metadata``.
"""

from __future__ import annotations

import json
import math
import numbers
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .atomic import OutputError, atomic_write_text
from .layout import ERROR_FILE, EXECUTED_NOTEBOOK, RESULTS_FILENAME, batch_of, run_experiment, run_folder, run_seed
from .registry import PROFILES, check_metric_name

__all__ = [
    "RESULTS_FILENAME",
    "SCHEMA_VERSION",
    "ResultRecord",
    "ResultsError",
    "read_results",
    "write_results",
]

SCHEMA_VERSION = 2  # 2: one key `experiment` (schema 1 wrote `row` beside it; docs/registry.md#migration-from-schema-2)
# distributions whose versions every results.json records (None when not installed)
_VERSIONED = ("torch", "transformers", "accelerate", "datasets", "rouge-score", "trl", "peft", "papermill")


class ResultsError(ValueError):
    """A results file that cannot be written or read; the message names the file (and metric)."""


@pydantic_dataclass(frozen=True, config=ConfigDict(strict=True))
class ResultRecord:
    """One ``results.json`` (schema version 2) and where it lies: the schema, written once. The writer builds one
    and writes its fields but ``path``; the reader validates a file into one (types are strict: a seed ``"1"``
    or a metric ``"high"`` is refused naming the key)."""

    path: Path
    experiment: str  # the registry experiment the run feeds (notebook parameter ``experiment``; a row id works too)
    profile: str  # "smoke", "cpu" or "paper"
    seed: int  # the run's seed
    metrics: dict[str, float]  # metric name (registry.METRIC_NAMES) -> value, as the paper prints it
    parameters: dict[str, Any] = field(default_factory=dict)  # the resolved run parameters (JSON-serialisable)
    versions: dict[str, str | None] = field(default_factory=dict)  # python, r3f-repro and library versions
    git_commit: str | None = None  # HEAD of the repository holding r3f_utils, None outside a git checkout
    started_at: str | None = None  # ISO 8601 UTC
    finished_at: str | None = None  # ISO 8601 UTC, when the file was written
    extra: dict[str, Any] = field(default_factory=dict)  # anything else the notebook keeps (timings, losses)
    schema_version: int = SCHEMA_VERSION  # of the writer

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (every field but ``path``; ``schema_version`` first)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("path", "schema_version")}
        return {"schema_version": self.schema_version, **data}


_REQUIRED = ("experiment", "profile", "seed", "metrics", "parameters")  # keys a file must have (others: defaults)


def _utc_iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.astimezone()  # naive datetimes are local time
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    try:
        versions["r3f-repro"] = metadata.version("r3f-repro")
    except metadata.PackageNotFoundError:  # running from a checkout that is not pip-installed
        from . import __version__

        versions["r3f-repro"] = __version__
    for dist in _VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _git_commit() -> str | None:
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_metrics(metrics: Mapping[str, Any], where: str) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ResultsError(
                f"{where}: metric {name!r} is {value!r} ({type(value).__name__}), not a number"
            )
        if not math.isfinite(float(value)):
            raise ResultsError(f"{where}: metric {name!r} is {value!r}, not a finite number")
        checked[str(name)] = float(value)
    return checked


def write_results(
    output_dir: str | Path,
    *,
    experiment: str,
    profile: str,
    seed: int,
    metrics: Mapping[str, float],
    parameters: Mapping[str, Any],
    started_at: datetime | str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``output_dir/results.json`` atomically and return its path.

    Metric names must be registry metric names (``registry.METRIC_NAMES``) and values finite numbers; keep
    anything else in ``extra``. An existing ``results.json`` is never overwritten.
    """
    out_dir = Path(output_dir)
    target = out_dir / RESULTS_FILENAME
    if target.exists():
        raise ResultsError(f"{target}: already exists; a run folder is written once (use a new output_dir)")
    if profile not in PROFILES:
        raise ResultsError(f"{target}: profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ResultsError(f"{target}: seed must be an int, not {seed!r}")
    if not metrics:
        raise ResultsError(f"{target}: no metrics given")
    for name in metrics:
        try:
            check_metric_name(str(name))
        except ValueError as err:
            raise ResultsError(f"{target}: {err} (put other numbers in `extra`)") from None
    extra_dict = dict(extra or {})
    record = ResultRecord(
        path=target, experiment=experiment, profile=profile, seed=int(seed),
        metrics=_check_metrics(metrics, str(target)), parameters=dict(parameters), versions=_versions(),
        git_commit=_git_commit(), started_at=_utc_iso(started_at),
        finished_at=_utc_iso(datetime.now(timezone.utc)) or "", extra=extra_dict,
    )
    payload = record.to_json()
    try:
        text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ResultsError(f"{target}: parameters/extra are not JSON-serialisable: {err}") from None
    try:
        atomic_write_text(target, text + "\n", exclusive=True)  # never overwrites, never leaves half a file
    except FileExistsError:
        raise ResultsError(f"{target}: already exists; a run folder is written once") from None
    except OutputError as err:
        raise ResultsError(f"{err}; no results.json was written") from err
    return target


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ResultsError when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: not a readable JSON file: {err}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _parse(path: Path) -> ResultRecord:
    data = read_json_object(path)
    version = data.get("schema_version")
    if version == 1:
        raise ResultsError(
            f"{path}: schema_version 1 is no longer read: schema 2 keeps one key, `experiment` (schema 1 also wrote "
            f"`row`, the same experiment key); convert with `python -m r3f_utils.migrate {path.parent}` "
            "(docs/registry.md#migration-from-schema-2)"
        )
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version!r} is not supported (this reader: {SCHEMA_VERSION})"
        )
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ResultsError(f"{path}: missing key {missing[0]!r}")
    known = {f.name for f in fields(ResultRecord)} - {"path"}
    values = {k: v for k, v in data.items() if k in known}
    values.update((k, values.get(k) or {}) for k in ("versions", "extra"))  # null: none recorded
    try:  # NaN/inf metrics pass here; the checker reports them as `invalid`
        return ResultRecord(path=path, **values)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0])
        if key == "metrics" and len(first["loc"]) > 1:
            name = first["loc"][1]
            raise ResultsError(f"{path}: metric {name!r} is {data['metrics'][name]!r}, not a number") from None
        raise ResultsError(f"{path}: key {key!r}: {first['msg'].lower()}, got {data.get(key)!r}") from None


def read_results(root: str | Path) -> list[ResultRecord]:
    """Read every ``results.json`` under ``root`` (recursively), sorted by path.

    Raises ResultsError naming the file for a malformed file, and when ``root`` does not exist.
    """
    base = Path(root)
    if not base.exists():
        raise ResultsError(f"{base}: results folder does not exist")
    if base.is_file():
        if base.name != RESULTS_FILENAME:  # e.g. --results <run>/notebook.ipynb
            what = ("is a notebook, not a results folder" if base.suffix == ".ipynb"
                    else f"is neither a results folder nor a {RESULTS_FILENAME}")
            raise ResultsError(f"{base}: {what}: pass the run or batch folder that holds it "
                               f"(--results {base.parent}), or a {RESULTS_FILENAME}")
        return [_parse(base)]
    records = [_parse(path) for path in sorted(base.rglob(RESULTS_FILENAME))]
    for rec in records:
        _check_run_folder(rec)
    _check_unfinished_runs(base)
    return records


def _check_run_folder(rec: ResultRecord) -> None:
    """In a runner batch (``<batch>/batch.json``, runs in ``<experiment>/seed-<k>/``) a results.json must belong
    to its run folder."""
    if batch_of(rec.path.parent) is None:
        return
    folder, seed = run_experiment(rec.path.parent), run_seed(rec.path.parent)
    if folder != rec.experiment or seed != rec.seed:
        raise ResultsError(
            f"{rec.path}: holds experiment {rec.experiment!r} seed {rec.seed}, but lies in the run folder of "
            f"{folder!r} seed {seed} (copied from another run?): move it to {run_folder(rec.experiment, rec.seed)}/ "
            "or delete it"
        )


def _check_unfinished_runs(base: Path) -> None:
    """In a runner batch, an executed notebook without results.json and without the runner's error.txt is an
    interrupted run."""
    for notebook in sorted(base.rglob(EXECUTED_NOTEBOOK)):
        run = notebook.parent
        batch = batch_of(run)
        if batch is not None and not (run / RESULTS_FILENAME).exists() and not (run / ERROR_FILE).exists():
            raise ResultsError(
                f"{run}: an executed notebook without {RESULTS_FILENAME} (the run was interrupted or the notebook "
                f"never called write_results): finish it with `reproduce --resume {batch}`, or "
                "delete the folder"
            )
