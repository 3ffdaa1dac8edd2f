"""The result registry: every number of the paper, as a validated list of ``RegistryRow``.

``results_registry.yaml`` (``rows:``, a list) is read with :func:`r3f_utils.yaml_io.load` (safe; ``1e-5`` is a
number). Rows and claims are validated by their classes, pydantic dataclasses whose fields are the YAML keys
(:class:`RegistryRow`, :class:`Claim`: each schema written once); every problem is reported, naming the row and the
field, with near matches suggested for names (:func:`r3f_utils.params.validation_problems`). This
module also holds the one list of metric names (``METRIC_NAMES``) and aggregations (``AGGREGATIONS``) the whole
package uses. No torch/transformers import; papermill is imported only to check notebooks.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass as plain_dataclass
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from . import yaml_io
from .families import ProfileDefaults, family_of
from .package_data import registry_path
from .params import (
    GLUE_TASK_NAMES,
    MIGRATION_NOTE,
    PROBE_MAX_CYCLES,
    PROFILES,
    REGISTRY_SCHEMA,
    RENAMED,
    XNLI_LANGUAGES,
    Problems,
    location,
    renamed,
    resolve,
    suggest,
    validation_problems,
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
    "ClaimPin",
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

_TOP_LEVEL = ("schema_version", "templates", "rows", "claims")
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NUMBER_LIKE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


class RegistryError(ValueError):
    """An invalid registry; ``errors`` lists every problem, each naming the row and the field."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def check_metric_name(name: str) -> None:
    """Raise ValueError (with a "did you mean") when ``name`` is not in ``METRIC_NAMES``."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric name {name!r}{suggest(str(name), METRIC_NAMES)}")


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


def _string_numbers(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """``(location, problem)`` per number-like string in a parameter value."""
    if isinstance(value, str) and _NUMBER_LIKE.match(value):
        yield loc, str(_number_problem(value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _string_numbers(v, (*loc, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_numbers(v, (*loc, i))


def string_number_problems(value: Any, path: str) -> list[str]:
    """``"<path>: <problem>"`` per number-like string in a parameter value (papermill passes strings on)."""
    return [f"{path}{'' if not loc or isinstance(loc[0], int) else '.'}{location(loc)}: {problem}"
            for loc, problem in _string_numbers(value)]


# ---- the schema: the types of the registry's fields -----------------------------------------------------------
# Each raises the message the registry reports (params.validation_problems adds the row and the field); a type
# error that no validator words is reported with the field's ``allowed`` text.

def _number(value: Any) -> float:
    problem = _number_problem(value)
    if problem:
        raise ValueError(problem)
    return float(value)


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"{value!r} is negative")
    return value


def _text(value: Any) -> str:  # a number written unquoted is its text (`table: 1`)
    return _name(str(value)) if isinstance(value, int) and not isinstance(value, bool) else _name(value)


def _name(value: Any) -> str:
    if not isinstance(value, str) or value == "":
        raise PydanticCustomError("expected", "a non-empty string")  # or the field's `allowed`
    return value


def _id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(f"{value!r} may hold only letters, digits, '_', '.', '-' (ids name run folders)")
    return value


def _metric_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"unknown metric name {value!r}")
    check_metric_name(value)
    return value


def _one_of(options: Iterable[str], noun: str | None = None) -> BeforeValidator:
    """A choice among ``options``: ``unknown <noun> 'x'; did you mean ...`` or ``must be one of ..., got 'x'``."""
    options = tuple(options)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in options:
            return value
        if noun:
            raise ValueError(f"unknown {noun} {value!r}{suggest(str(value), options)} (known: {', '.join(options)})")
        raise ValueError(f"must be one of {', '.join(map(repr, options))}, got {value!r}{suggest(str(value), options)}")

    return BeforeValidator(check)


def _either(allowed: str) -> WrapValidator:
    """One message for a value none of a union's types accepts (instead of one per type)."""

    def collapse(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected {allowed}, got {value!r}") from None

    return WrapValidator(collapse)


def _parameter_name(key: Any) -> str:
    if key in COMMON_PARAMETERS:
        raise ValueError(f"{key!r} is injected by the runner; do not set it in the registry")
    return str(key)


def _no_string_numbers(value: Any) -> Any:
    problems = list(_string_numbers(value))
    if problems:
        raise Problems(problems)
    return value


def _non_empty(value: Any) -> Any:  # an empty list given is a mistake (null: none)
    if isinstance(value, list) and not value:
        raise PydanticCustomError("expected", "a non-empty list")  # or the field's `allowed`
    return value


def _empty_if_null(empty: Any) -> BeforeValidator:
    return BeforeValidator(lambda value: empty if value is None else value)


def _listed(value: Any) -> Any:  # `notes: one string` is `notes: [one string]`
    return [value] if isinstance(value, str) else value


def _allowed(text: str) -> Any:
    """What a field accepts, in words (the message of a type error no validator words)."""
    return Field(json_schema_extra={"allowed": text})


Number = Annotated[float, BeforeValidator(_number)]
NonNegative = Annotated[float, BeforeValidator(_number), AfterValidator(_non_negative)]
Text = Annotated[str, BeforeValidator(_text)]
Name = Annotated[str, BeforeValidator(_name)]
Id = Annotated[str, BeforeValidator(_text), AfterValidator(_id)]
MetricName = Annotated[str, BeforeValidator(_metric_name)]
Parameters = Annotated[
    dict[Annotated[str, BeforeValidator(_parameter_name)], Annotated[Any, AfterValidator(_no_string_numbers)]],
    _empty_if_null({}), _allowed("a mapping parameter -> value")]
Notes = Annotated[tuple[str, ...], BeforeValidator(_listed), _empty_if_null(()), _allowed("a string or a list of "
                                                                                          "strings")]
_SECTION = "a mapping with parameters, expected, tolerance, seeds"
_SCHEMA = ConfigDict(extra="forbid", defer_build=True)  # unknown keys refused; built on first use


def _tolerance_problems(tolerance: Mapping[str, float], metrics: Iterable[str]) -> list[tuple[tuple[str, ...], str]]:
    metrics = list(metrics)
    return ([(("tolerance",), f"tolerance for {name!r}, which is not among the metrics{suggest(name, metrics)}")
             for name in tolerance if name not in metrics]
            + [(("tolerance",), f"no tolerance for metric {name!r}") for name in metrics if name not in tolerance])


def _one_tolerance_for_all(data: Any, metrics_key: str) -> Any:
    """``tolerance: 0.5`` is ``tolerance: {<every metric>: 0.5}`` (each checked as its own; none while the metrics
    are not a mapping: that is reported there)."""
    if isinstance(data, Mapping) and "tolerance" in data and not isinstance(data["tolerance"], Mapping):
        metrics = data.get(metrics_key)
        data = {**data, "tolerance": dict.fromkeys(metrics if isinstance(metrics, Mapping) else (), data["tolerance"])}
    return data


@dataclass(frozen=True, config=_SCHEMA)
class DatasetRef:
    """Where a row's evaluation data comes from on the Hugging Face Hub."""

    hub_id: Annotated[Name, _allowed("a Hub dataset id")]
    # a tuple: one config per language (XNLI)
    config: Annotated[str | tuple[str, ...] | None, _either("a config name, a list of them, or null")]
    split: Annotated[Name | tuple[Name, ...], _either("a split name or a list of them")]
    # a Hub branch/commit, e.g. refs/convert/parquet (the Parquet conversion)
    revision: Annotated[Name | None, _allowed("a Hub revision (refs/convert/parquet) or null")] = None

    @model_validator(mode="before")
    @classmethod
    def _no_config(cls, data: Any) -> Any:  # no `config:` is `config: null`
        return {"config": None, **data} if isinstance(data, Mapping) else data


@dataclass(frozen=True, config=_SCHEMA)
class ProfileSpec:
    """A row's ``smoke:`` or ``cpu:`` section: parameter overrides, pinned values, seeds to run (default 1)."""

    # over the family's profile values (r3f_utils.families); a null is refused (RegistryRow._check)
    parameters: Parameters = field(default_factory=dict)
    expected: Annotated[dict[MetricName, Number], _empty_if_null({}), _allowed("a mapping metric name -> number")
                        ] = field(default_factory=dict)
    tolerance: Annotated[dict[str, NonNegative], _allowed("a number, or metric -> number")] = field(
        default_factory=dict)
    seeds: Annotated[int, Strict(), Field(ge=1), _allowed("a whole number >= 1")] = 1

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: Any) -> ProfileSpec:
        spec = handler(_one_tolerance_for_all(data, "expected"))
        if spec.expected and not spec.tolerance:
            raise Problems([(("tolerance",), "required when expected is given")])
        problems = _tolerance_problems(spec.tolerance, spec.expected) if spec.expected else []
        if problems:
            raise Problems(problems)
        return spec


@dataclass(frozen=True, config=_SCHEMA)
class RegistryRow:
    """One registered result: a group of numbers the paper prints for one model/method on one dataset.

    Its fields are the keys of a row of ``results_registry.yaml`` (this class is the row's schema).
    """

    id: Id
    table: Text
    task: Text
    # None: the run reads no dataset (Table 1: random token batches)
    dataset: Annotated[DatasetRef | None, _allowed("a mapping with hub_id, config, split, revision, or null for a "
                                                   "run that reads no dataset")]
    model: Text
    method: Text
    # None: the paper prints no number (a figure); the run is still measured
    metrics: Annotated[dict[MetricName, Number | None], Field(min_length=1),
                       _allowed("a non-empty mapping metric name -> number")]
    aggregation: Annotated[str, _one_of(AGGREGATIONS, "aggregation")]
    tolerance: Annotated[dict[str, NonNegative], _allowed("a number, or metric -> number")]  # a number: each metric
    role: Annotated[str, _one_of(ROLES, "role")]
    experiment: Id | None = None  # rows produced by the same runs share it; None: the id (filled in on creation)
    notebook: Name | None = None
    parameters: Parameters = field(default_factory=dict)
    smoke: Annotated[ProfileSpec, _empty_if_null({}), _allowed(_SECTION)] = field(default_factory=ProfileSpec)
    notes: Notes = ()
    printed: Annotated[dict[str, str], _empty_if_null({}), _allowed("a mapping metric -> printed text")] = field(
        default_factory=dict)
    cpu: Annotated[ProfileSpec | None, _allowed(_SECTION)] = None  # rows without it are not in the cpu profile

    def __post_init__(self) -> None:
        if self.experiment is None:
            object.__setattr__(self, "experiment", self.id)

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: Any) -> RegistryRow:
        raw = data if isinstance(data, Mapping) else {}
        row = handler(_one_tolerance_for_all(data, "metrics"))
        problems = _tolerance_problems(row.tolerance, row.metrics)
        target = row.role == "target"
        if not target and any(v is None for v in row.metrics.values()):
            problems.append((("metrics",), "a reported row quotes printed numbers; null (no number) is for target "
                                           "rows"))
        if target and row.notebook is None:
            problems.append((("notebook",), "a target row needs the notebook that reproduces it"))
        if not target and row.notebook is not None:
            problems.append((("notebook",), "a reported row is quoted from another paper and has no notebook"))
        if target and raw and "parameters" not in raw:
            problems.append((("parameters",), "a target row needs the parameters that reproduce it"))
        problems += [(("printed",), f"{k!r} is not among the row's metrics: expected a mapping metric -> printed "
                                    "text, for metrics of this row") for k in row.printed if k not in row.metrics]
        if row.cpu is not None and not target:
            problems.append((("cpu",), "only a target row (one this package runs) can have a cpu profile"))
        for name in ("smoke", "cpu"):
            spec = getattr(row, name)
            unknown = [m for m in (spec.expected if spec is not None else ()) if m not in row.metrics]
            if unknown:
                problems.append(((name, "expected"), f"pins {unknown}, which are not among the row's metrics"))
            # a null used to drop the row's key so that the notebook's default applied; each profile's values now
            # live in its family's record, so a null is refused rather than passed to the notebook as None
            problems += [((name, "parameters", key), "null no longer drops a parameter: delete the key; the "
                          f"{name} profile's value comes from the family's profile values (r3f_utils/families.py, "
                          "ProfileDefaults), else the notebook's default")
                         for key, value in (spec.parameters if spec is not None else {}).items() if value is None]
        if problems:
            raise Problems(problems)
        return row

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
        """Row parameters for ``profile``: its family's values for the profile (``r3f_utils.families``, the one
        place they live), the row's ``parameters`` (its paper recipe: in smoke/cpu without the keys those profiles
        set themselves), then its ``smoke:``/``cpu:`` section's. A notebook outside the families' table: the row's
        parameters, then the section's."""
        spec = self.profile_spec(profile)
        family = family_of(self.notebook)
        profiles = family.profiles if family is not None else ProfileDefaults()
        return profiles.resolve(profile, self.parameters, spec.parameters if spec is not None else {})


def _operand(value: Any, metric: Any = None) -> Any:
    """``left: [exp]`` is ``left: [{experiment: exp}]``; an operand without a metric reads the claim's."""
    value = {"experiment": value} if isinstance(value, str) else value
    if isinstance(value, Mapping) and "metric" not in value and metric is not None:
        return {**value, "metric": metric}
    if not isinstance(value, (Mapping, ClaimOperand)):
        raise ValueError(f"expected an experiment key or {{experiment: X, metric: M}}, got {value!r}")
    return value


@dataclass(frozen=True, config=_SCHEMA)
class ClaimOperand:
    """One side element of a claim: an experiment's metric (its seeds aggregated as the claim says)."""

    experiment: Name
    metric: MetricName  # default: the claim's


@dataclass(frozen=True, config=_SCHEMA)
class ClaimPin:
    """A claim's ``smoke:`` / ``cpu:`` section: the verdict pinned for that profile."""

    expected: Annotated[str, _one_of(CLAIM_VERDICTS)]


_PIN = "{expected: holds|fails|degenerate}"
Operands = Annotated[tuple[Annotated[ClaimOperand, BeforeValidator(_operand)], ...], Field(
    min_length=1, json_schema_extra={"allowed": "a non-empty list of experiment keys"})]


@dataclass(frozen=True, config=_SCHEMA)
class Claim:
    """An ordering statement of the paper (mostly from its figures), judged ``holds`` / ``fails`` over runs.

    ``reduce(left) relation reduce(right)`` (+ ``margin``), where ``reduce`` is ``left_reduce`` /
    ``right_reduce``: ``each`` makes the relation hold for every element, ``max``/``min``/``mean`` combine a
    side into one value first. ``smoke`` / ``cpu`` pin the verdict per profile (``expected``): tiny models say
    nothing about the paper, so there only a change of verdict fails. Its fields are the keys of a claim of
    ``results_registry.yaml``; read with the rows' experiments as context, its operands are checked against them.
    """

    id: Id
    statement: Text
    source: Text
    metric: MetricName
    aggregation: Annotated[str, _one_of(AGGREGATIONS)]
    left: Operands
    relation: Annotated[str, _one_of(CLAIM_RELATIONS)]
    right: Operands
    left_reduce: Annotated[str, _one_of(CLAIM_REDUCTIONS)] = "each"
    right_reduce: Annotated[str, _one_of(CLAIM_REDUCTIONS)] = "each"
    margin: NonNegative = 0.0  # a required gap, in metric units
    figure: Text | None = None
    table: Text | None = None
    smoke: Annotated[ClaimPin | None, _allowed(_PIN)] = None
    cpu: Annotated[ClaimPin | None, _allowed(_PIN)] = None
    notes: Notes = ()
    # judged on each of these metrics (tasks) with the same operands; all must hold
    per_metric: Annotated[tuple[MetricName, ...], _empty_if_null(()), BeforeValidator(_non_empty),
                          _allowed("a non-empty list of metric names")] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: Any, info: ValidationInfo) -> Claim:
        if isinstance(data, Mapping):  # each operand (an experiment key or a mapping) with the claim's metric
            sides = [side for side in ("left", "right") if isinstance(data.get(side), list)]
            data = {**data, **{side: [o if not isinstance(o, (str, Mapping)) else _operand(o, data.get("metric"))
                                      for o in data[side]] for side in sides}}
        claim = handler(data)
        experiments = (info.context or {}).get("experiments")
        if experiments is not None:
            problems = claim.operand_problems(experiments)
            if problems:
                raise Problems(problems)
        return claim

    def operand_problems(self, experiments: Mapping[str, tuple[tuple[str, ...], str] | None]
                         ) -> list[tuple[tuple[str | int, ...], str]]:
        """What is wrong with the operands given the registry's experiments (key -> (metrics, role), or None for
        one whose rows are invalid: not judged here)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for side in ("left", "right"):
            for i, o in enumerate(getattr(self, side)):
                if o.experiment not in experiments:
                    problems.append(((side, i), f"{o.experiment!r} is not the experiment of any row"
                                                f"{suggest(o.experiment, experiments)} (claims read the runs of "
                                                "registered experiments)"))
                    continue
                if experiments[o.experiment] is None:
                    continue
                metrics, role = experiments[o.experiment]
                if o.metric not in metrics:
                    problems.append(((side, i), f"experiment {o.experiment!r} does not register metric "
                                                f"{o.metric!r} (its rows have {', '.join(metrics)})"))
                if role != "target":
                    problems.append(((side, i), f"experiment {o.experiment!r} is a reported row: nothing runs it"))
        if self.per_metric and self.metric not in self.per_metric:
            problems.append((("per_metric",), f"must contain the claim's metric {self.metric!r} (the one shown "
                                              "first)"))
        for name in self.per_metric:
            problems += [(("per_metric",), f"experiment {e!r} does not register metric {name!r}")
                         for e in self.experiments if experiments.get(e) and name not in experiments[e][0]]
        return problems

    @property
    def where(self) -> str:
        """Where the claim is in the paper: "figure 1", "table 2"."""
        return ", ".join(f"{k} {v}" for k, v in (("figure", self.figure), ("table", self.table)) if v is not None)

    @property
    def expected(self) -> dict[str, str]:
        """The pinned verdict per profile (smoke, cpu)."""
        return {p: pin.expected for p, pin in (("smoke", self.smoke), ("cpu", self.cpu)) if pin is not None}

    @property
    def experiments(self) -> tuple[str, ...]:
        """Every experiment the claim reads, in order, once."""
        return tuple(dict.fromkeys(o.experiment for o in (*self.left, *self.right)))

    @property
    def seeds_needed(self) -> int:
        """Seeds per experiment the claim's aggregation implies (paper profile)."""
        return AGGREGATIONS[self.aggregation][1]


@plain_dataclass(frozen=True)
class Registry:
    """The whole registry file: its rows and its claims."""

    rows: list[RegistryRow]
    claims: list[Claim]


@functools.cache
def _adapter(schema: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(schema)


def _validate(schema: type[Any], raw: Any, where: str, errors: list[str], **context: Any) -> Any:
    """``raw`` validated as a ``schema``, or None with every problem appended to ``errors`` (the field named)."""
    try:
        return _adapter(schema).validate_python(raw, context=context)
    except ValidationError as err:
        errors += [f"{where}: field '{path}': {message}" if path else f"{where}: {message}"
                   for path, message in validation_problems(err, schema)]
        return None


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
                import papermill  # heavy (jupyter, ~1 s); only for a notebook outside the families' table

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
                        f" '{row.notebook}'{suggest(key, names)}"
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


def _parse_claims(raw: Any, rows: list[RegistryRow], invalid: set[str], errors: list[str]) -> list[Claim]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"claims: expected a list of claims, got {type(raw).__name__}")
        return []
    # experiment key -> (the union of its rows' metrics, role); None: a row of it is invalid (reported there)
    experiments: dict[str, tuple[tuple[str, ...], str] | None] = {}
    for row in rows:
        metrics, role = experiments.get(row.experiment) or ((), row.role)
        experiments[row.experiment] = (tuple(dict.fromkeys([*metrics, *row.metrics])), role)
    experiments.update(dict.fromkeys(invalid))
    claims: list[Claim] = []
    seen = {r.id for r in rows}
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors.append(f"claims[{index}]: expected a mapping, got {item!r}")
            continue
        claim_id = item.get("id")
        where = f"claim '{claim_id}'" if isinstance(claim_id, str) else f"claims[{index}]"
        claim = _validate(Claim, item, where, errors, experiments=experiments)
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
            errors.append(f"{path}: unknown top-level key {key!r}{suggest(str(key), _TOP_LEVEL)}")
    version = data.get("schema_version")
    older = version in (1, 2) and not isinstance(version, bool)
    if isinstance(version, str) and version.strip().isdigit():  # schema_version: '2'
        errors.append(f"{path}: schema_version is the string {version!r}, not a number: write it without quotes "
                      f"(schema_version: {int(version)})")
    elif version not in SCHEMA_VERSIONS or isinstance(version, bool):
        errors.append(f"{path}: schema_version {version!r} is not supported by this reader (it reads "
                      f"{', '.join(map(str, SCHEMA_VERSIONS))}); "
                      + (f"add `schema_version: {REGISTRY_SCHEMA}` at the top" if version is None
                         else _old_schema() if older else "upgrade r3f-repro"))
    if older:  # every row would repeat the renames: the version's message says them
        raise RegistryError(errors)
    _check_spellings(data["rows"], errors)
    rows: list[RegistryRow] = []
    invalid: set[str] = set()  # the experiments of rows reported invalid (claims do not repeat it)
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["rows"]):
        if not isinstance(raw, Mapping):
            errors.append(f"rows[{index}]: expected a mapping, got {raw!r}")
            continue
        row_id = raw.get("id")
        where = f"row '{row_id}'" if isinstance(row_id, str) else f"rows[{index}]"
        row = _validate(RegistryRow, raw, where, errors)
        if row is None:
            invalid.add(str(raw.get("experiment", row_id)))
            continue
        if row.id in seen:
            errors.append(f"row '{row.id}': field 'id': duplicate id (also rows[{seen[row.id]}])")
        seen.setdefault(row.id, index)
        rows.append(row)
    _check_experiments(rows, errors)
    claims = _parse_claims(data.get("claims"), rows, invalid, errors)
    if check_notebooks and not errors:
        _check_notebooks(rows, path.parent, errors)
    if errors:
        raise RegistryError([f"{path}: {e}" if not e.startswith(str(path)) else e for e in errors])
    return Registry(rows, claims)


def _old_schema() -> str:
    """What changed since registry schemas 1 and 2, and where the migration note is."""
    renames = ", ".join(f"{old} -> {new}" for old, new in RENAMED.items())
    return (f"schema {REGISTRY_SCHEMA} renamed parameters ({renames}; the probing study experiment -> study) and "
            "results.json's `row` -> `experiment`, and moved each family's per-profile values to "
            f"r3f_utils/families.py: rename the keys, drop the profile templates and write `schema_version: "
            f"{REGISTRY_SCHEMA}` ({MIGRATION_NOTE})")


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
