"""What a registry row's recipe downloads and costs, and whether the paper profile can run it.

``python -m r3f_utils validate --profile paper`` prints, per target row, the Hub dataset id, config, revision
and splits its notebook will download, its updates, epochs and estimated GPU-hours, and fails on a row that
cannot run as registered:

* a dataset whose Hub main branch is a loading script (``datasets`` >= 4 refuses it) without the Parquet
  conversion revision (``refs/convert/parquet``);
* a row whose ``dataset`` differs from what its notebook's loader reads (one spelling per fact);
* a summarization row whose batch, updates or evaluation interval differ from the derivation of
  :mod:`r3f_utils.recipes`.

What each notebook reads and costs is its family's (:mod:`r3f_utils.families`); the numbers behind the cost
are :mod:`r3f_utils.recipes`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data.sources import LOADING_SCRIPT_REPOS, PARQUET_CONVERSION
from .families import family_of, generic_cost
from .recipes import (
    BUDGET_TOLERANCE,
    GPU,
    MIN_EVALUATIONS,
    Download,
    SummarizationBudget,
    derive_summarization_budget,
)
from .registry import DatasetRef, RegistryRow

__all__ = [
    "RecipeDescription",
    "describe_row",
    "describe_rows",
    "expected_dataset",
    "format_descriptions",
    "paper_profile_problems",
    "relative_cost",
    "validate_paper_profile",
]


@dataclass
class RecipeDescription:
    """What one row's run downloads and costs, and why it cannot run as registered (``problems``)."""

    row: str
    experiment: str
    notebook: str | None
    downloads: list[Download] = field(default_factory=list)
    updates: int | None = None
    epochs: float | None = None
    gpu_hours: float | None = None
    problems: list[str] = field(default_factory=list)


def _configs(ref: DatasetRef) -> tuple[str | None, ...]:
    return ref.config if isinstance(ref.config, tuple) else (ref.config,)


def expected_dataset(row: RegistryRow) -> DatasetRef | None:
    """The ``dataset`` the row's notebook loader reads (hub id, config(s), revision; split from the row).

    KeyError for a notebook outside the families' table; None for a family that reads no dataset.
    """
    family = family_of(row.notebook)
    if family is None:
        raise KeyError(row.notebook)
    spec = family.dataset(row.parameters_for("paper"))
    if spec is None:
        return None
    hub_id, config, revision = spec
    return DatasetRef(hub_id, config, row.dataset.split if row.dataset is not None else "?", revision)  # ?: none


def _dataset_problems(row: RegistryRow) -> list[str]:
    ref = row.dataset
    problems = []
    if ref is not None and ref.hub_id in LOADING_SCRIPT_REPOS and ref.revision != PARQUET_CONVERSION:
        problems.append(f"dataset {ref.hub_id} is a loading-script repository, which the pinned datasets cannot "
                        f"load: set dataset.revision: {PARQUET_CONVERSION} (the Hub's Parquet conversion)")
    return problems


def _budget_problems(row: RegistryRow, budget: SummarizationBudget) -> list[str]:
    p = row.parameters_for("paper")
    per_update = int(p.get("batch_size", 8)) * int(p.get("gradient_accumulation_steps", 1))
    problems = []
    exact = 0.0 if budget.source else BUDGET_TOLERANCE  # published updates/warmup: exactly; derived ones: +-10%
    for name, registered, derived, tolerance in (
            ("documents per update (batch_size x gradient_accumulation_steps)", per_update,
             budget.documents_per_update, BUDGET_TOLERANCE),
            ("max_updates", int(p.get("max_updates", 0)), budget.updates, exact),
            ("warmup_updates", int(p.get("warmup_updates", 0)), budget.warmup_updates, exact)):
        if abs(registered - derived) > tolerance * derived:
            problems.append(f"{name} is {registered}, the budget gives {derived} "
                            f"(r3f_utils.recipes.derive_summarization_budget)")
    eval_steps = p.get("eval_steps")
    evaluations = int(p.get("max_updates", 0)) // int(eval_steps) if eval_steps else 0
    if evaluations < MIN_EVALUATIONS:
        problems.append(f"eval_steps {eval_steps!r} evaluates {evaluations} times; the best checkpoint needs at least "
                        f"{MIN_EVALUATIONS} (derived: eval_steps {budget.eval_steps})")
    return problems


def describe_row(row: RegistryRow, profile: str = "paper") -> RecipeDescription:
    """Downloads, updates, epochs, GPU-hours and problems of ``row`` in ``profile`` (target rows: the run)."""
    desc = RecipeDescription(row.id, row.experiment, row.notebook, problems=_dataset_problems(row))
    if row.role != "target" or row.notebook is None:
        return desc
    family = family_of(row.notebook)
    if family is None:  # not a family's notebook: the row's own dataset only
        ref = row.dataset
        if ref is not None:
            desc.downloads = [Download(ref.hub_id, c, sp, ref.revision) for c in _configs(ref)
                              for sp in (ref.split if isinstance(ref.split, tuple) else (ref.split,))]
        return desc
    expected = expected_dataset(row)
    if expected != row.dataset:
        desc.problems.append(f"dataset is {row.dataset}, but its notebook's loader reads {expected}: "
                             "write the loader's hub_id/config/revision in the row")
    desc.downloads = family.downloads(row.parameters_for("paper")) if expected is not None else []
    if profile == "paper":  # issue 18: head dropout, weight-decay grouping, SMART's Bregman term, probe protocol
        from r3f_utils.fidelity import fidelity_problems

        desc.problems += fidelity_problems(row)
    if family.describes_budget:
        params = row.parameters_for(profile)
        cost = family.cost(params)
        desc.updates, desc.epochs, desc.gpu_hours = cost.updates, cost.epochs, cost.gpu_hours
        if family.name == "summarization" and profile == "paper":
            desc.problems += _budget_problems(row, derive_summarization_budget(str(params["dataset"])))
    return desc


def relative_cost(notebook: str, params: Mapping[str, Any]) -> float:
    """A run's training work, only to order a batch longest first (the launcher): its family's estimated
    GPU-hours where the model is one of the paper's, else token-passes (updates x examples per update x tokens per
    example x Table 1's cost of the method), with fine-tuning stages of probing chains counted. ``params``: the
    notebook's defaults updated with the run's."""
    family = family_of(notebook)
    return (family.cost if family is not None else generic_cost)(params).work


def describe_rows(rows: Iterable[RegistryRow], profile: str = "paper") -> list[RecipeDescription]:
    """One description per row; rows of one experiment share a run, so only its first row is kept."""
    seen: set[str] = set()
    out = []
    for row in rows:
        if row.role == "target" and row.experiment in seen:
            continue
        seen.add(row.experiment)
        out.append(describe_row(row, profile))
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_descriptions(descriptions: Sequence[RecipeDescription], seeds: Mapping[str, int] | None = None) -> str:
    """A text table: row, updates, epochs, GPU-hours per run, downloads; then every problem."""
    lines = [f"{'row':<42} {'updates':>8} {'epochs':>7} {'GPU-h':>6}  downloads (hub_id/config@revision:split)"]
    total = 0.0
    for d in descriptions:
        if d.notebook is None and not d.problems:
            continue
        n = (seeds or {}).get(d.row, 1)
        total += (d.gpu_hours or 0.0) * n
        downloads = ", ".join(map(str, d.downloads)) or ("none (random token batches)" if d.notebook else "-")
        lines.append(f"{d.row:<42} {_fmt(d.updates, 'd'):>8} {_fmt(d.epochs, '.2f'):>7} "
                     f"{_fmt(d.gpu_hours, '.1f'):>6}  {downloads}")
    lines.append(f"estimated GPU-hours, all runs x seeds: {total:,.0f} (one {GPU[0]}, {GPU[2]:.0%} of "
                 f"{GPU[1] / 1e12:.0f} TFLOP/s bf16; training only; r3f_utils/recipes.py)")
    problems = [f"row '{d.row}': {p}" for d in descriptions for p in d.problems]
    if problems:
        lines.append(f"{len(problems)} problem(s):")
        lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def paper_profile_problems(descriptions: Sequence[RecipeDescription]) -> list[str]:
    """Every problem of every description, ``row '<id>': <problem>``."""
    return [f"row '{d.row}': {p}" for d in descriptions for p in d.problems]


def validate_paper_profile(rows: Sequence[RegistryRow], out: Any = None) -> int:
    """Print the paper profile's downloads and budgets (``format_descriptions``); 1 when a row cannot run."""
    import sys

    descriptions = describe_rows(rows, "paper")
    seeds = {d.row: next(r.seeds_needed for r in rows if r.id == d.row) for d in descriptions}
    print(format_descriptions(descriptions, seeds), file=out or sys.stdout)
    from r3f_utils.fidelity import fidelity_summary

    settings: dict[str, int] = {}
    for row in rows:
        for choice in fidelity_summary(row).split():
            settings[choice] = settings.get(choice, 0) + 1
    if settings:
        print("fidelity choices of the paper profile (rows): "
              + ", ".join(f"{k} ({n})" for k, n in sorted(settings.items())), file=out or sys.stdout)
    return 1 if paper_profile_problems(descriptions) else 0
