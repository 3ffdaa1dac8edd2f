"""The result registry: every number of the paper, as a validated list of ``RegistryRow``.

``results_registry.yaml`` (``rows:``, a list) is read with :func:`r3f_utils.yaml_io.load` (safe; ``1e-5`` is a
number). Validation names the row and the field of every problem and suggests near matches for names. This
module also holds the one list of metric names (``METRIC_NAMES``) and aggregations (``AGGREGATIONS``) the whole
package uses. No torch/transformers import; papermill is imported only to check notebooks.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import yaml_io
from .families import family_of
from .package_data import registry_path
from .params import (
    GLUE_TASK_NAMES,
    MIGRATION_NOTE,
    PROBE_MAX_CYCLES,
    PROFILES,
    REGISTRY_SCHEMA,
    RENAMED,
    XNLI_LANGUAGES,
    renamed,
    resolve,
)

__all__ = [
    "AGGREGATIONS",
    "CLAIM_REDUCTIONS",
    "CLAIM_RELATIONS",
    "COMMON_PARAMETERS",
    "DEFAULT_REGISTRY",
    "GLUE_TASK_NAMES",
    "METRIC_NAMES",
    "PROBE_MAX_CYCLES",
    "PROFILES",
    "ROLES",
    "SCHEMA_VERSIONS",
    "XNLI_LANGUAGES",
    "Claim",
    "ClaimOperand",
    "DatasetRef",
    "ProfileSpec",
    "Registry",
    "RegistryError",
    "RegistryRow",
    "check_metric_name",
    "is_number_like",
    "load_registry",
    "read_registry",
    "select_claims",
    "select_rows",
    "string_number_problems",
]

DEFAULT_REGISTRY = registry_path()  # the checkout's own file, else the copy shipped in the wheel


def _probing_metric_names() -> dict[str, tuple[str, bool]]:
    """Metric names of the probing studies (Figures 3-5; ``r3f_utils.experiments.probing``)."""
    names: dict[str, tuple[str, bool]] = {}
    for t in GLUE_TASK_NAMES:
        names[f"probe_{t}"] = (f"dev metric x100 of a probe on {t} over the frozen fine-tuned encoder", True)
        names[f"probe_after_{t}"] = (f"dev metric x100 of the source-task probe after the {t} stage", True)
        for c in range(1, PROBE_MAX_CYCLES + 1):
            names[f"probe_c{c}_{t}"] = (f"dev metric x100 of the {t} probe in cycle {c} of the cyclic chain", True)
    names["probe_final"] = ("dev metric x100 of the source-task probe after the last stage of the chain", True)
    names["probe_drop"] = ("source-task probe after the first stage minus after the last (x100 points)", False)
    names["probe_mean"] = ("mean of the run's probe metrics x100", True)
    return names


# metric name -> (what it measures, higher is better)
METRIC_NAMES: dict[str, tuple[str, bool]] = {
    "accuracy": ("accuracy x100", True),
    "accuracy_matched": ("MNLI matched dev accuracy x100", True),
    "accuracy_mismatched": ("MNLI mismatched dev accuracy x100", True),
    "f1": ("F1 of the positive class x100", True),
    "mcc": ("Matthews correlation x100", True),
    "pearson": ("Pearson correlation x100", True),
    "spearman": ("Spearman correlation x100", True),
    "rouge1": ("ROUGE-1 F x100, Porter stemming", True),
    "rouge2": ("ROUGE-2 F x100, Porter stemming", True),
    "rougeL": ("sentence-level ROUGE-L F x100, Porter stemming", True),
    "rougeLsum": ("summary-level ROUGE-L F x100 (one sentence per line), Porter stemming", True),
    **{f"accuracy_{lang}": (f"XNLI {lang} test accuracy x100", True) for lang in XNLI_LANGUAGES},
    "accuracy_avg": ("mean XNLI test accuracy over the 15 languages x100", True),
    "forward_passes": ("forward passes per training step", False),
    "backward_passes": ("backward passes per training step", False),
    "cost_xfp": ("cost per training step in forward-pass units (a backward pass costs 2)", False),
    "wall_time_to_best": ("training seconds to the best checkpoint (Figure 1)", False),
    "seconds_per_epoch": ("training seconds per epoch of the training data", False),
    # the sft family (beyond the paper): held-out completion tokens and greedy answers
    "eval_loss": ("held-out loss per completion token (natural log; prompts and padding excluded)", False),
    "perplexity": ("held-out perplexity over the completion tokens (exp of eval_loss)", False),
    "token_f1": ("token F1 x100 of greedy answers against the reference completions", True),
    **_probing_metric_names(),
}

# aggregation name -> (operation over seeds, number of seeds the paper used)
AGGREGATIONS: dict[str, tuple[str, int]] = {
    "max_of_10": ("max", 10),
    "median_of_10": ("median", 10),
    "mean_of_5": ("mean", 5),
    "median_of_5": ("median", 5),  # RoBERTa's published GLUE dev numbers
    "single": ("mean", 1),
}

ROLES = ("target", "reported")
# registry file versions this reader understands (2 added `cpu:` sections, null metrics and `claims:`; 3 gave each
# concept one spelling, params.RENAMED: older versions are refused with a pointer to the migration note)
SCHEMA_VERSIONS = (REGISTRY_SCHEMA,)
CLAIM_RELATIONS = ("<", "<=", ">", ">=")
# how the values of one side of a claim combine: every element on its own, or one reduced value
CLAIM_REDUCTIONS = ("each", "max", "min", "mean")
CLAIM_VERDICTS = ("holds", "fails", "degenerate")  # what a smoke/cpu section may pin
# parameters the runner injects into every notebook
COMMON_PARAMETERS = ("experiment", "profile", "seed", "output_dir")

_REQUIRED = (
    "id",
    "table",
    "task",
    "dataset",
    "model",
    "method",
    "metrics",
    "aggregation",
    "tolerance",
    "role",
)
_OPTIONAL = ("experiment", "notebook", "parameters", "smoke", "cpu", "notes", "printed")
_TOP_LEVEL = ("schema_version", "templates", "rows", "claims")
_SMOKE_KEYS = ("parameters", "expected", "tolerance", "seeds")
_DATASET_KEYS = ("hub_id", "config", "split", "revision")
_CLAIM_REQUIRED = ("id", "statement", "source", "metric", "aggregation", "left", "relation", "right")
_CLAIM_OPTIONAL = ("figure", "table", "left_reduce", "right_reduce", "margin", "smoke", "cpu", "notes", "per_metric")
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NUMBER_LIKE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


class RegistryError(ValueError):
    """An invalid registry; ``errors`` lists every problem, each naming the row and the field."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class DatasetRef:
    """Where a row's evaluation data comes from on the Hugging Face Hub."""

    hub_id: str
    config: str | tuple[str, ...] | None  # a tuple: one config per language (XNLI)
    split: str | tuple[str, ...]
    revision: str | None = None  # a Hub branch/commit, e.g. refs/convert/parquet (the Parquet conversion)


@dataclass(frozen=True)
class ProfileSpec:
    """A row's ``smoke:`` or ``cpu:`` section: parameter overrides, pinned values, seeds to run (default 1)."""

    parameters: dict[str, Any] = field(default_factory=dict)  # a null value drops the parameter
    expected: dict[str, float] = field(default_factory=dict)
    tolerance: dict[str, float] = field(default_factory=dict)
    seeds: int = 1


@dataclass(frozen=True)
class RegistryRow:
    """One registered result: a group of numbers the paper prints for one model/method on one dataset."""

    id: str
    table: str
    task: str
    dataset: DatasetRef | None  # None: the run reads no dataset (Table 1: random token batches)
    model: str
    method: str
    metrics: dict[str, float | None]  # None: the paper prints no number (a figure); the run is still measured
    aggregation: str
    tolerance: dict[str, float]
    role: str
    experiment: str
    notebook: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    smoke: ProfileSpec = field(default_factory=ProfileSpec)
    notes: tuple[str, ...] = ()
    printed: dict[str, str] = field(default_factory=dict)
    cpu: ProfileSpec | None = None  # rows without it are not part of the cpu profile

    @property
    def seeds_needed(self) -> int:
        """Number of seeds the paper's aggregation implies."""
        return AGGREGATIONS[self.aggregation][1]

    @property
    def numbers(self) -> dict[str, float]:
        """The metrics the paper prints a number for (figure metrics are None and left out)."""
        return {k: v for k, v in self.metrics.items() if v is not None}

    def profile_spec(self, profile: str) -> ProfileSpec | None:
        """The row's ``smoke:`` / ``cpu:`` section (None for ``paper``, or a row without a ``cpu:`` section)."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
        return {"smoke": self.smoke, "cpu": self.cpu}.get(profile)

    def seeds_for(self, profile: str) -> int:
        """Seeds a run of ``profile`` needs: the section's ``seeds`` (default 1), or the paper's aggregation."""
        spec = self.profile_spec(profile)
        return self.seeds_needed if profile == "paper" else (spec.seeds if spec is not None else 1)

    def parameters_for(self, profile: str) -> dict[str, Any]:
        """Row parameters for ``profile``; smoke/cpu merge their section's parameters (null drops a key)."""
        params = dict(self.parameters)
        spec = self.profile_spec(profile)
        for key, value in (spec.parameters if spec is not None else {}).items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return params


@dataclass(frozen=True)
class ClaimOperand:
    """One side element of a claim: an experiment's metric (its seeds aggregated as the claim says)."""

    experiment: str
    metric: str


@dataclass(frozen=True)
class Claim:
    """An ordering statement of the paper (mostly from its figures), judged ``holds`` / ``fails`` over runs.

    ``reduce(left) relation reduce(right)`` (+ ``margin``), where ``reduce`` is ``left_reduce`` /
    ``right_reduce``: ``each`` makes the relation hold for every element, ``max``/``min``/``mean`` combine a
    side into one value first. ``expected`` pins the verdict per profile (smoke, cpu): tiny models say nothing
    about the paper, so there only a change of verdict fails.
    """

    id: str
    statement: str
    source: str
    metric: str
    aggregation: str
    left: tuple[ClaimOperand, ...]
    relation: str
    right: tuple[ClaimOperand, ...]
    left_reduce: str = "each"
    right_reduce: str = "each"
    margin: float = 0.0
    where: str = ""  # "figure 1", "table 2"
    expected: dict[str, str] = field(default_factory=dict)  # profile -> pinned verdict
    notes: tuple[str, ...] = ()
    per_metric: tuple[str, ...] = ()  # judged on each of these metrics (tasks) with the same operands; all must hold

    @property
    def experiments(self) -> tuple[str, ...]:
        """Every experiment the claim reads, in order, once."""
        return tuple(dict.fromkeys(o.experiment for o in (*self.left, *self.right)))

    @property
    def seeds_needed(self) -> int:
        """Seeds per experiment the claim's aggregation implies (paper profile)."""
        return AGGREGATIONS[self.aggregation][1]


@dataclass(frozen=True)
class Registry:
    """The whole registry file: its rows and its claims."""

    rows: list[RegistryRow]
    claims: list[Claim]


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_metric_name(name: str) -> None:
    """Raise ValueError (with a "did you mean") when ``name`` is not in ``METRIC_NAMES``."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric name {name!r}{_suggest(name, METRIC_NAMES)}")


def _number_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable number, or None when it is one."""
    if isinstance(value, str) and _NUMBER_LIKE.match(value):  # unquoted, the YAML reader makes it a number
        return f"{value!r} is a string, not a number (it is quoted); write {value.strip()}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} ({type(value).__name__}) is not a number"
    if not math.isfinite(value):
        return f"{value!r} is not a finite number"
    return None


def is_number_like(text: str) -> bool:
    """True for strings such as ``"1e-5"`` that look like a number (PyYAML 1.1 leaves them strings)."""
    return bool(_NUMBER_LIKE.match(text))


def string_number_problems(value: Any, path: str) -> list[str]:
    """``"<path>: <problem>"`` per number-like string in a parameter value (papermill passes strings on)."""
    if isinstance(value, str):
        return [f"{path}: {_number_problem(value)}"] if _NUMBER_LIKE.match(value) else []
    if isinstance(value, Mapping):
        return [e for k, v in value.items() for e in string_number_problems(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in string_number_problems(v, f"{path}[{i}]")]
    return []


class _RowParser:
    """Validates one raw row; collects errors instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any], where: str, errors: list[str]):
        self.raw, self.where, self.errors = raw, where, errors

    def error(self, fld: str, message: str) -> None:
        self.errors.append(f"{self.where}: field '{fld}': {message}")

    def text(self, fld: str) -> str:
        value = self.raw.get(fld)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            self.error(fld, f"expected a non-empty string, got {value!r}")
            return ""
        return str(value)

    def metric_values(self, fld: str, value: Any, *, allow_null: bool = False) -> dict[str, Any]:
        if not isinstance(value, Mapping) or not value:
            self.error(fld, f"expected a non-empty mapping metric name -> number, got {value!r}")
            return {}
        out: dict[str, Any] = {}
        for name, number in value.items():
            if str(name) not in METRIC_NAMES:
                self.error(fld, f"unknown metric name {name!r}{_suggest(str(name), METRIC_NAMES)}")
                continue
            if number is None and allow_null:  # a figure: measured, no printed number to compare with
                out[str(name)] = None
                continue
            problem = _number_problem(number)
            if problem:
                self.error(f"{fld}.{name}", problem)
                continue
            out[str(name)] = float(number)
        return out

    def tolerance(self, fld: str, value: Any, metrics: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(value, Mapping):
            value = dict.fromkeys(metrics, value)  # one number for every metric
        out: dict[str, float] = {}
        for name, number in value.items():
            if name not in metrics:
                self.error(
                    fld, f"tolerance for {name!r}, which is not among the metrics{_suggest(name, metrics)}"
                )
                continue
            problem = _number_problem(number)
            if problem or number < 0:
                self.error(f"{fld}.{name}", problem or f"{number!r} is negative")
                continue
            out[name] = float(number)
        for name in metrics:
            if name not in value:
                self.error(fld, f"no tolerance for metric {name!r}")
        return out

    def dataset(self) -> DatasetRef | None:
        value = self.raw.get("dataset")
        if value is None:  # the run reads no dataset (Table 1 counts passes on random token batches)
            return None
        if not isinstance(value, Mapping):
            self.error("dataset", f"expected a mapping with {', '.join(_DATASET_KEYS)}, or null for a run that "
                                  f"reads no dataset, got {value!r}")
            return DatasetRef("", None, "")
        for key in value:
            if key not in _DATASET_KEYS:
                self.error(f"dataset.{key}", f"unknown key{_suggest(str(key), _DATASET_KEYS)}")
        hub_id, config, split = value.get("hub_id"), value.get("config"), value.get("split")
        if not isinstance(hub_id, str) or not hub_id:
            self.error("dataset.hub_id", f"expected a Hub dataset id, got {hub_id!r}")
        if isinstance(config, list) and config and all(isinstance(c, str) for c in config):
            config = tuple(config)  # one config per language (XNLI)
        elif config is not None and not isinstance(config, str):
            self.error("dataset.config", f"expected a config name, a list of them, or null, got {config!r}")
        revision = value.get("revision")
        if revision is not None and (not isinstance(revision, str) or not revision):
            self.error("dataset.revision", f"expected a Hub revision (refs/convert/parquet) or null, got {revision!r}")
        if isinstance(split, list) and split and all(isinstance(s, str) for s in split):
            split = tuple(split)
        elif not isinstance(split, str) or not split:
            self.error("dataset.split", f"expected a split name or a list of them, got {split!r}")
        return DatasetRef(str(hub_id), config, split, revision)

    def parameters(self, fld: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(fld, f"expected a mapping parameter -> value, got {value!r}")
            return {}
        for key, item in value.items():
            if key in COMMON_PARAMETERS:
                self.error(f"{fld}.{key}", "is injected by the runner; do not set it in the registry")
            for problem in string_number_problems(item, f"{fld}.{key}"):
                self.error(problem.split(": ", 1)[0], problem.split(": ", 1)[1])
        return {str(k): v for k, v in value.items()}

    def profile_section(self, name: str, metrics: Mapping[str, Any]) -> ProfileSpec | None:
        """The ``smoke:`` or ``cpu:`` section (None when absent)."""
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.error(name, f"expected a mapping with {', '.join(_SMOKE_KEYS)}, got {value!r}")
            return None
        for key in value:
            if key not in _SMOKE_KEYS:
                self.error(f"{name}.{key}", f"unknown key{_suggest(str(key), _SMOKE_KEYS)}")
        params = self.parameters(f"{name}.parameters", value.get("parameters"))
        expected: dict[str, float] = {}
        tolerance: dict[str, float] = {}
        if value.get("expected") is not None:
            expected = self.metric_values(f"{name}.expected", value["expected"])
            unknown = [m for m in expected if m not in metrics]
            if unknown:
                self.error(f"{name}.expected", f"pins {unknown}, which are not among the row's metrics")
            if "tolerance" not in value:
                self.error(f"{name}.tolerance", f"required when {name}.expected is given")
            else:
                tolerance = self.tolerance(f"{name}.tolerance", value["tolerance"], expected)
        seeds = value.get("seeds", 1)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            self.error(f"{name}.seeds", f"expected a whole number >= 1, got {seeds!r}")
            seeds = 1
        return ProfileSpec(params, expected, tolerance, seeds)

    def notes(self) -> tuple[str, ...]:
        value = self.raw.get("notes")
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(n, str) for n in value):
            return tuple(value)
        self.error("notes", f"expected a string or a list of strings, got {value!r}")
        return ()

    def parse(self) -> RegistryRow | None:
        for key in self.raw:
            if key not in _REQUIRED and key not in _OPTIONAL:
                self.error(str(key), f"unknown field{_suggest(str(key), _REQUIRED + _OPTIONAL)}")
        missing = [f for f in _REQUIRED if f not in self.raw]
        for fld in missing:
            self.error(fld, "missing required field")
        if missing:
            return None
        row_id = self.text("id")
        if row_id and not _ID_RE.match(row_id):
            self.error(
                "id", f"{row_id!r} may hold only letters, digits, '_', '.', '-' (it names run folders)"
            )
        aggregation = self.text("aggregation")
        if aggregation and aggregation not in AGGREGATIONS:
            self.error(
                "aggregation",
                f"unknown aggregation {aggregation!r}{_suggest(aggregation, AGGREGATIONS)}"
                f" (known: {', '.join(AGGREGATIONS)})",
            )
        role = self.text("role")
        if role and role not in ROLES:
            self.error("role", f"unknown role {role!r}{_suggest(role, ROLES)} (known: {', '.join(ROLES)})")
        metrics = self.metric_values("metrics", self.raw.get("metrics"), allow_null=True)
        if role == "reported" and any(v is None for v in metrics.values()):
            self.error("metrics", "a reported row quotes printed numbers; null (no number) is for target rows")
        notebook = self.raw.get("notebook")
        if role == "target" and (not isinstance(notebook, str) or not notebook):
            self.error("notebook", "a target row needs the notebook that reproduces it")
        if role == "reported" and notebook is not None:
            self.error("notebook", "a reported row is quoted from another paper and has no notebook")
        if role == "target" and "parameters" not in self.raw:
            self.error("parameters", "a target row needs the parameters that reproduce it")
        printed = self.raw.get("printed") or {}
        if not isinstance(printed, Mapping) or any(k not in metrics for k in printed):
            self.error("printed", "expected a mapping metric -> printed text, for metrics of this row")
            printed = {}
        cpu = self.profile_section("cpu", metrics)
        if cpu is not None and role != "target":
            self.error("cpu", "only a target row (one this package runs) can have a cpu profile")
        experiment = self.raw.get("experiment", row_id)
        if not isinstance(experiment, str) or not _ID_RE.match(experiment):
            self.error("experiment", f"expected an id-like string, got {experiment!r}")
        return RegistryRow(
            id=row_id,
            table=self.text("table"),
            task=self.text("task"),
            dataset=self.dataset(),
            model=self.text("model"),
            method=self.text("method"),
            metrics=metrics,
            aggregation=aggregation,
            tolerance=self.tolerance("tolerance", self.raw.get("tolerance"), metrics),
            role=role,
            experiment=str(experiment),
            notebook=notebook if isinstance(notebook, str) else None,
            parameters=self.parameters("parameters", self.raw.get("parameters")),
            smoke=self.profile_section("smoke", metrics) or ProfileSpec(),
            notes=self.notes(),
            printed={str(k): str(v) for k, v in printed.items()},
            cpu=cpu,
        )


def _difference(mine: Any, theirs: Any, other: str) -> str:
    """What differs between this row's value of a field and row ``other``'s, by name: the two notebooks, or each
    differing parameter."""
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        parts = [f"parameter {k!r} = {mine[k]!r} here, absent in row '{other}'" if k not in theirs
                 else f"parameter {k!r} absent here, = {theirs[k]!r} in row '{other}'" if k not in mine
                 else f"parameter {k!r} = {mine[k]!r} here, {theirs[k]!r} in row '{other}'"
                 for k in dict.fromkeys([*mine, *theirs]) if mine.get(k, _MISSING) != theirs.get(k, _MISSING)]
        return "; ".join(parts)
    return f"{mine!r} here, {theirs!r} in row '{other}'"


_MISSING = object()


def _check_experiments(rows: list[RegistryRow], errors: list[str]) -> None:
    first: dict[str, RegistryRow] = {}
    for row in rows:
        other = first.setdefault(row.experiment, row)
        if other is row:
            continue
        for attr in ("notebook", "parameters", "role"):
            if getattr(row, attr) != getattr(other, attr):
                errors.append(
                    f"row '{row.id}': field '{attr}': {_difference(getattr(row, attr), getattr(other, attr), other.id)}"
                    f", which shares experiment '{row.experiment}' (rows of one experiment come from the same runs:"
                    " make them equal)"
                )
        for name in ("smoke", "cpu"):
            mine, theirs = getattr(row, name), getattr(other, name)
            if (mine and (mine.parameters, mine.seeds)) != (theirs and (theirs.parameters, theirs.seeds)):
                errors.append(
                    f"row '{row.id}': field '{name}': parameters/seeds differ from row '{other.id}' of the same"
                    f" experiment '{row.experiment}'"
                )


def _check_values(row: RegistryRow, errors: list[str]) -> None:
    """A family's row: its parameters of every profile validated by the family's parameter class, as the notebook
    will validate them (types, ranges, choices), so a bad value fails here rather than in a run."""
    family = family_of(row.notebook)
    if family is None or row.role != "target":
        return
    sections = [("parameters", "paper"), ("smoke.parameters", "smoke")] + (
        [("cpu.parameters", "cpu")] if row.cpu is not None else [])
    for fld, profile in sections:
        params = {k: v for k, v in row.parameters_for(profile).items() if k in family.params.model_fields}
        try:
            resolve(family.params, {**params, "profile": profile})
        except ValueError as err:
            errors.append(f"row '{row.id}': field '{fld}': {err}")


def _check_notebooks(rows: list[RegistryRow], base: Path, errors: list[str]) -> None:
    import papermill  # heavy (jupyter); only needed here

    declared: dict[Path, set[str] | None] = {}
    for row in rows:
        if row.notebook is None:
            continue
        path = (base / row.notebook).resolve()
        family = family_of(row.notebook)
        if path not in declared:
            if not path.is_file():
                declared[path] = None
            elif family is not None:  # its parameters cell is stamped from its class (tests/unit/test_families.py)
                declared[path] = set(family.params.model_fields)
            else:
                declared[path] = set(papermill.inspect_notebook(str(path)))
                for name in COMMON_PARAMETERS:
                    if name not in declared[path]:
                        errors.append(
                            f"notebook '{row.notebook}': does not declare the common parameter"
                            f" {name!r} in its 'parameters' cell"
                        )
        names = declared[path]
        if names is None:
            what = ("is a folder, not a notebook file: name the .ipynb in it" if path.is_dir()
                    else "does not exist")
            errors.append(f"row '{row.id}': field 'notebook': {row.notebook!r} {what} ({path})")
            continue
        _check_values(row, errors)
        sections = [("parameters", row.parameters), ("smoke.parameters", row.smoke.parameters)]
        if row.cpu is not None:
            sections.append(("cpu.parameters", row.cpu.parameters))
        for fld, params in sections:
            for key in params:
                if key not in names:
                    errors.append(
                        f"row '{row.id}': field '{fld}.{key}': not declared by notebook"
                        f" '{row.notebook}'{_suggest(key, names)}"
                    )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is tolerated
    except OSError as err:
        raise RegistryError([f"{path}: cannot read registry: {err}"]) from None
    except UnicodeDecodeError as err:
        raise RegistryError([f"{path}: not UTF-8 text ({err}); save the registry as UTF-8"]) from None
    try:
        return yaml_io.load(text)  # YAML 1.2 floats (1e-5 is a number), duplicate keys refused
    except yaml_io.YAMLError as err:
        hint = " (YAML forbids tabs for indentation: use spaces)" if "\t" in text and "\\t" in str(err) else ""
        raise RegistryError([f"{path}: not valid YAML{hint}: {err}"]) from None


class _ClaimParser(_RowParser):
    """Validates one raw claim against the rows' experiments."""

    def operands(self, fld: str, metric: str, experiments: Mapping[str, RegistryRow]) -> tuple[ClaimOperand, ...]:
        value = self.raw.get(fld)
        if not isinstance(value, list) or not value:
            self.error(fld, f"expected a non-empty list of experiment keys, got {value!r}")
            return ()
        out: list[ClaimOperand] = []
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                unknown = [k for k in item if k not in ("experiment", "metric")]
                if unknown:
                    self.error(f"{fld}[{i}]", f"unknown keys {unknown} (allowed: experiment, metric)")
                exp, met = item.get("experiment"), item.get("metric", metric)
            else:
                exp, met = item, metric
            if not isinstance(exp, str) or exp not in experiments:
                known = experiments if isinstance(exp, str) else ()
                self.error(f"{fld}[{i}]", f"{exp!r} is not the experiment of any row{_suggest(str(exp), known)}"
                           " (claims read the runs of registered experiments)")
                continue
            if not isinstance(met, str) or met not in METRIC_NAMES:
                self.error(f"{fld}[{i}].metric", f"unknown metric name {met!r}{_suggest(str(met), METRIC_NAMES)}")
                continue
            if met not in experiments[exp].metrics:
                self.error(f"{fld}[{i}]", f"experiment {exp!r} does not register metric {met!r} "
                           f"(its rows have {', '.join(experiments[exp].metrics)})")
            if experiments[exp].role != "target":
                self.error(f"{fld}[{i}]", f"experiment {exp!r} is a reported row: nothing runs it")
            out.append(ClaimOperand(exp, met))
        return tuple(out)

    def choice(self, fld: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw.get(fld, default)
        if value not in allowed:
            self.error(fld, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
            return allowed[0]
        return str(value)

    def parse_claim(self, experiments: Mapping[str, RegistryRow]) -> Claim | None:
        for key in self.raw:
            if key not in _CLAIM_REQUIRED and key not in _CLAIM_OPTIONAL:
                self.error(str(key), f"unknown field{_suggest(str(key), _CLAIM_REQUIRED + _CLAIM_OPTIONAL)}")
        missing = [f for f in _CLAIM_REQUIRED if f not in self.raw]
        for fld in missing:
            self.error(fld, "missing required field")
        if missing:
            return None
        claim_id = self.text("id")
        if claim_id and not _ID_RE.match(claim_id):
            self.error("id", f"{claim_id!r} may hold only letters, digits, '_', '.', '-'")
        metric = self.text("metric")
        if metric and metric not in METRIC_NAMES:
            self.error("metric", f"unknown metric name {metric!r}{_suggest(metric, METRIC_NAMES)}")
        aggregation = self.choice("aggregation", tuple(AGGREGATIONS))
        margin = self.raw.get("margin", 0.0)
        problem = _number_problem(margin)
        if problem or margin < 0:
            self.error("margin", problem or f"{margin!r} is negative (a required gap, in metric units)")
            margin = 0.0
        expected: dict[str, str] = {}
        for profile in ("smoke", "cpu"):
            section = self.raw.get(profile)
            if section is None:
                continue
            if not isinstance(section, Mapping) or set(section) != {"expected"}:
                self.error(profile, f"expected {{expected: holds|fails|degenerate}}, got {section!r}")
            elif section["expected"] not in CLAIM_VERDICTS:
                self.error(f"{profile}.expected", f"must be one of {', '.join(map(repr, CLAIM_VERDICTS))}, "
                           f"got {section['expected']!r}")
            else:
                expected[profile] = section["expected"]
        where = [f"{k} {self.raw[k]}" for k in ("figure", "table") if k in self.raw]
        per_metric = self.per_metric(metric, experiments)
        return Claim(
            id=claim_id,
            statement=self.text("statement"),
            source=self.text("source"),
            metric=metric,
            aggregation=aggregation,
            left=self.operands("left", metric, experiments),
            relation=self.choice("relation", CLAIM_RELATIONS),
            right=self.operands("right", metric, experiments),
            left_reduce=self.choice("left_reduce", CLAIM_REDUCTIONS, "each"),
            right_reduce=self.choice("right_reduce", CLAIM_REDUCTIONS, "each"),
            margin=float(margin),
            where=", ".join(where),
            expected=expected,
            notes=self.notes(),
            per_metric=per_metric,
        )

    def per_metric(self, metric: str, experiments: Mapping[str, RegistryRow]) -> tuple[str, ...]:
        """The optional ``per_metric`` list: every metric known, registered by every operand, ``metric`` among them."""
        value = self.raw.get("per_metric")
        if value is None:
            return ()
        if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
            self.error("per_metric", f"expected a non-empty list of metric names, got {value!r}")
            return ()
        if metric not in value:
            self.error("per_metric", f"must contain the claim's metric {metric!r} (the one shown first)")
        for name in value:
            if name not in METRIC_NAMES:
                self.error("per_metric", f"unknown metric name {name!r}{_suggest(name, METRIC_NAMES)}")
                continue
            for side in ("left", "right"):
                for item in self.raw.get(side) or []:
                    exp = item.get("experiment") if isinstance(item, Mapping) else item
                    if isinstance(exp, str) and exp in experiments and name not in experiments[exp].metrics:
                        self.error("per_metric", f"experiment {exp!r} does not register metric {name!r}")
        return tuple(value)


def _parse_claims(raw: Any, rows: list[RegistryRow], errors: list[str]) -> list[Claim]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"claims: expected a list of claims, got {type(raw).__name__}")
        return []
    experiments: dict[str, RegistryRow] = {}
    for row in rows:
        if row.experiment not in experiments:
            experiments[row.experiment] = row
        else:  # an experiment's metrics are the union of its rows'
            first = experiments[row.experiment]
            experiments[row.experiment] = replace(first, metrics={**first.metrics, **row.metrics})
    claims: list[Claim] = []
    seen = {r.id for r in rows}
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors.append(f"claims[{index}]: expected a mapping, got {item!r}")
            continue
        claim_id = item.get("id")
        where = f"claim '{claim_id}'" if isinstance(claim_id, str) else f"claims[{index}]"
        claim = _ClaimParser(item, where, errors).parse_claim(experiments)
        if claim is None:
            continue
        if claim.id in seen:
            errors.append(f"{where}: field 'id': duplicate id (ids are shared by rows and claims)")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def read_registry(path: str | Path = DEFAULT_REGISTRY, *, check_notebooks: bool = True) -> Registry:
    """Read and validate the registry's rows and claims; raise RegistryError listing every problem.

    ``check_notebooks=False`` skips the checks that a target row's notebook exists and declares its
    parameters (for unit tests of the other fields and for the fast ``check`` command).
    """
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("rows"), list):
        raise RegistryError([f"{path}: expected a mapping with a top-level 'rows:' list"])
    errors: list[str] = []
    for key in data:
        if key not in _TOP_LEVEL:
            errors.append(f"{path}: unknown top-level key {key!r}{_suggest(str(key), _TOP_LEVEL)}")
    version = data.get("schema_version")
    if isinstance(version, str) and version.strip().isdigit():  # schema_version: '2'
        errors.append(f"{path}: schema_version is the string {version!r}, not a number: write it without quotes "
                      f"(schema_version: {int(version)})")
    elif version not in SCHEMA_VERSIONS or isinstance(version, bool):
        errors.append(f"{path}: schema_version {version!r} is not supported by this reader (it reads "
                      f"{', '.join(map(str, SCHEMA_VERSIONS))}); "
                      + (f"add `schema_version: {REGISTRY_SCHEMA}` at the top" if version is None
                         else _old_schema(version) if version in (1, 2) else "upgrade r3f-repro"))
    if errors and version in (1, 2):  # every row would repeat the renames: the version's message says them
        raise RegistryError(errors)
    _check_spellings(data["rows"], errors)
    rows: list[RegistryRow] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["rows"]):
        if not isinstance(raw, Mapping):
            errors.append(f"rows[{index}]: expected a mapping, got {raw!r}")
            continue
        row_id = raw.get("id")
        where = f"row '{row_id}'" if isinstance(row_id, str) else f"rows[{index}]"
        row = _RowParser(raw, where, errors).parse()
        if row is None:
            continue
        if row.id in seen:
            errors.append(f"row '{row.id}': field 'id': duplicate id (also rows[{seen[row.id]}])")
        seen.setdefault(row.id, index)
        rows.append(row)
    _check_experiments(rows, errors)
    claims = _parse_claims(data.get("claims"), rows, errors)
    if check_notebooks and not errors:
        _check_notebooks(rows, path.parent, errors)
    if errors:
        raise RegistryError([f"{path}: {e}" if not e.startswith(str(path)) else e for e in errors])
    return Registry(rows, claims)


def _old_schema(version: int) -> str:
    """What changed since registry schema ``version`` and where the migration note is."""
    renames = ", ".join(f"{old} -> {new}" for old, new in RENAMED.items())
    return (f"schema {REGISTRY_SCHEMA} renamed parameters ({renames}; the probing study experiment -> study) and "
            f"results.json's `row` -> `experiment`: rename them and write `schema_version: {REGISTRY_SCHEMA}` "
            f"({MIGRATION_NOTE})")


def _check_spellings(raw_rows: list[Any], errors: list[str]) -> None:
    """Refuse the old spellings (:data:`r3f_utils.params.RENAMED`) among every row's parameters of every profile,
    with the new name and the migration note."""
    for index, raw in enumerate(raw_rows):
        if not isinstance(raw, Mapping):
            continue
        where = f"row '{raw['id']}'" if isinstance(raw.get("id"), str) else f"rows[{index}]"
        family = family_of(raw.get("notebook")) if isinstance(raw.get("notebook"), str) else None
        sections = [("parameters", raw.get("parameters"))] + [
            (f"{name}.parameters", raw[name].get("parameters")) for name in ("smoke", "cpu")
            if isinstance(raw.get(name), Mapping)]
        for fld, params in sections:
            for key in params if isinstance(params, Mapping) else ():
                pointer = renamed(str(key), family.name if family is not None else None)
                if pointer:
                    errors.append(f"{where}: field '{fld}.{key}': {pointer}")


def load_registry(path: str | Path = DEFAULT_REGISTRY, *, check_notebooks: bool = True) -> list[RegistryRow]:
    """The validated rows of the registry (see :func:`read_registry`, which also returns the claims)."""
    return read_registry(path, check_notebooks=check_notebooks).rows


def select_claims(claims: Iterable[Claim], patterns: Iterable[str] | None = None) -> list[Claim]:
    """Claims whose id matches any fnmatch pattern (all claims when ``patterns`` is empty)."""
    pats = [p for p in (patterns or []) if p]
    return [c for c in claims if not pats or any(fnmatch.fnmatchcase(c.id, p) for p in pats)]


def select_rows(
    rows: Iterable[RegistryRow], patterns: Iterable[str] | None = None, claims: Iterable[Claim] = ()
) -> list[RegistryRow]:
    """Rows whose id or experiment matches any fnmatch pattern (all rows when ``patterns`` is empty), plus the
    rows of every experiment read by a claim that matches a pattern (``--rows 'fig1.*'`` runs what fig1's
    claims compare)."""
    rows = list(rows)
    pats = [p for p in (patterns or []) if p]
    if not pats:
        return rows
    wanted = {e for c in select_claims(claims, pats) for e in c.experiments}
    return [
        r
        for r in rows
        if r.experiment in wanted or any(fnmatch.fnmatchcase(r.id, p) or fnmatch.fnmatchcase(r.experiment, p)
                                         for p in pats)
    ]
