"""Batch execution of registry rows with papermill: one run folder per (experiment, seed).

Layout (:mod:`r3f_utils.layout`): ``<out>/<UTC timestamp>/<experiment>/seed-<k>/`` holding ``notebook.ipynb``
(executed), ``results.json`` (written by the notebook), ``papermill.log`` (cell outputs) and, on failure, ``error.txt``.
Seeds are numbered 1..N. Rows that share an ``experiment`` (Table 2's best and median halves) run once per
seed; the notebook gets the experiment key as its ``experiment`` parameter. A run folder is never overwritten:
``resume`` skips seeds with a ``results.json`` and moves a failed (or interrupted) seed's folder aside before
rerunning it; the checkpoints of that attempt (``<run>/checkpoints``, where the notebooks keep them) move into
the new attempt's folder, so its training resumes from the last checkpoint instead of starting over.
No torch/transformers import; papermill and tqdm are imported when needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import yaml_io
from .layout import BATCH_MANIFEST, CHECKPOINTS, ERROR_FILE, EXECUTED_NOTEBOOK, RESULTS_FILENAME, batch_of, run_folder
from .params import renamed
from .registry import COMMON_PARAMETERS, PROFILES, RegistryRow, string_number_problems

__all__ = [
    "BATCH_MANIFEST",
    "BatchManifest",
    "Job",
    "JobOutcome",
    "RunnerError",
    "check_overrides",
    "check_resumable",
    "missing_manifest",
    "parse_override",
    "plan_jobs",
    "read_batch_manifest",
    "require_batch_manifest",
    "run_jobs",
    "validate_jobs",
    "write_batch_manifest",
]

# the smoke profile runs offline and on CPU unless the caller's environment says otherwise
_SMOKE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "CUDA_VISIBLE_DEVICES": "",
}


class RunnerError(ValueError):
    """A run plan that cannot start (unknown parameter, missing notebook, bad override)."""


@dataclass(frozen=True)
class Job:
    """One notebook execution: an experiment at one seed."""

    experiment: str
    rows: tuple[str, ...]  # registry rows this run feeds
    notebook: Path
    seed: int
    profile: str
    parameters: dict[str, Any]  # row parameters, without the four common ones

    @property
    def folder(self) -> Path:
        """Run folder relative to the batch folder."""
        return run_folder(self.experiment, self.seed)

    def injected(self, run_dir: Path) -> dict[str, Any]:
        """All papermill parameters: the row's plus ``experiment``, ``profile``, ``seed``, ``output_dir``."""
        return {
            **self.parameters,
            "experiment": self.experiment,
            "profile": self.profile,
            "seed": self.seed,
            "output_dir": str(run_dir.resolve()),
        }


@dataclass
class JobOutcome:
    """What happened to one job."""

    job: Job
    run_dir: Path
    status: str  # "ok", "skipped" (resume: already finished) or "failed"
    error: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value read as YAML, :mod:`r3f_utils.yaml_io`: ``1e-5`` is the float 1e-05)."""
    if "=" not in text:
        raise RunnerError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml_io.load(raw) if raw.strip() else ""
    except yaml_io.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RunnerError(f"--set {text!r}: the value {raw!r} is not valid YAML ({problem}); write a list as "
                          f"[1, 2], or quote a string: --set '{key.strip()}=\"{raw}\"'") from None
    return key.strip(), value


def plan_jobs(
    rows: Sequence[RegistryRow],
    registry_path: str | Path,
    *,
    profile: str = "smoke",
    seeds: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Job]:
    """One job per (experiment of a selected target row, seed). Seeds 1..N; default N: the row's ``seeds`` of
    its smoke/cpu section (1 unless set), the seeds the aggregation implies for paper (10 for max/median_of_10,
    5 for mean_of_5). The cpu profile runs only the rows that declare a ``cpu:`` section."""
    if profile not in PROFILES:
        raise RunnerError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if seeds is not None and seeds < 1:
        raise RunnerError(f"--seeds must be at least 1, not {seeds}")
    base = Path(registry_path).resolve().parent
    experiments: dict[str, list[RegistryRow]] = {}
    for row in rows:
        in_profile = profile == "paper" or row.profile_spec(profile) is not None
        if row.role == "target" and in_profile:
            experiments.setdefault(row.experiment, []).append(row)
    jobs: list[Job] = []
    for experiment, members in experiments.items():
        first = members[0]
        assert first.notebook is not None  # validated by the registry
        params = {**first.parameters_for(profile), **(overrides or {})}
        n = seeds or max(r.seeds_for(profile) for r in members)
        jobs.extend(
            Job(experiment, tuple(r.id for r in members), base / first.notebook, seed, profile, params)
            for seed in range(1, n + 1)
        )
    return jobs


def validate_jobs(jobs: Sequence[Job]) -> None:
    """Fail before anything runs: missing notebooks, undeclared parameters, number-like strings."""
    import papermill

    declared: dict[Path, set[str]] = {}
    errors: list[str] = []
    for job in jobs:
        if job.notebook not in declared:
            if not job.notebook.is_file():
                what = "is a folder, not a notebook file" if job.notebook.is_dir() else "does not exist"
                raise RunnerError(f"{job.experiment}: notebook {job.notebook} {what}")
            declared[job.notebook] = set(papermill.inspect_notebook(str(job.notebook)))
        names = declared[job.notebook]
        for key in [*job.parameters, *COMMON_PARAMETERS]:
            if key not in names:
                errors.append(
                    f"{job.experiment}: parameter {key!r} is not declared by {job.notebook.name}"
                    f" (declared: {', '.join(sorted(names))})"
                )
        errors.extend(
            f"{job.experiment}: {e}" for k, v in job.parameters.items() for e in string_number_problems(v, k)
        )
    if errors:
        raise RunnerError("\n".join(dict.fromkeys(errors)))


def new_batch_dir(out: str | Path) -> Path:
    """A fresh ``<out>/<UTC timestamp>`` folder (suffixed ``-2``, ``-3``... if the second is taken)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        candidate = Path(out) / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise RunnerError(f"cannot create a new run folder under {out}")


@contextlib.contextmanager
def _kernel_environment(profile: str) -> Iterator[None]:
    """Let the kernel import this checkout's r3f_utils; run smoke offline on CPU (caller's env wins)."""
    saved = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, saved.get("PYTHONPATH", "")) if p)
    if profile == "smoke":
        for key, value in _SMOKE_ENV.items():
            os.environ.setdefault(key, value)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _describe_failure(err: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first = next((ln for ln in err.source.splitlines() if ln.strip()), "")
        return (
            f"cell {err.cell_index} (execution count {err.exec_count}) `{first.strip()[:80]}` raised"
            f" {err.ename}: {err.evalue}"
        )
    return f"{type(err).__name__}: {err}"


# the kernel's own log (not the cells' output) shows errors only: no "Kernel is running over TCP without
# encryption" warning per run on a local batch
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
KERNEL_MANAGER = "r3f_utils.warm_kernel_manager.WarmKernelManager"  # jupyter_client's, with shorter idle polls
KERNEL_LOG_ENV = "R3F_KERNEL_LOG"  # = warm_kernel_manager.KERNEL_LOG_ENV (not imported here: no jupyter import)


def _record_failure(run_dir: Path, error: str) -> str:
    """Write ``error.txt`` atomically; on a full disk (or any OS error) write nothing and say so in the error."""
    from .atomic import OutputError, atomic_write_text

    try:
        atomic_write_text(run_dir / ERROR_FILE, error + "\n")
    except OutputError as err:
        return f"{error} (and error.txt could not be written: {err})"
    return error


def _run_one(job: Job, run_dir: Path, kernel_name: str, checkpoints_from: Path | None = None) -> JobOutcome:
    import papermill

    from .notebook_io import use_atomic_notebook_writes

    start = datetime.now(timezone.utc)
    try:
        run_dir.mkdir(parents=True, exist_ok=False)  # never reuse a run folder
    except FileExistsError:
        raise
    except OSError as err:  # a full disk: this run failed (nothing of it on disk: resume reruns it), the rest go on
        return JobOutcome(job, run_dir, "failed", f"cannot create the run folder: {_describe_failure(err)}")
    try:
        if checkpoints_from is not None and checkpoints_from.is_dir():
            checkpoints_from.rename(run_dir / CHECKPOINTS)  # resume training where the failed attempt stopped
        handler = logging.FileHandler(run_dir / "papermill.log", encoding="utf-8")
    except OSError as err:  # a full disk must not end the batch: this run failed, the rest go on
        error = _record_failure(run_dir, f"cannot start the run: {_describe_failure(err)}")
        return JobOutcome(job, run_dir, "failed", error, (datetime.now(timezone.utc) - start).total_seconds())
    use_atomic_notebook_writes()  # a failed save leaves the last complete notebook.ipynb, never a truncated one
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("papermill")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # cpu/paper: papermill saves the notebook at every cell's start and end (a long run can be watched); smoke
    # runs take seconds, and those ~40 saves cost ~0.3 s of CPU per run: the parameterized notebook is written
    # first (an interrupted run is still seen as one) and the executed one at the end, or on an error
    per_cell = job.profile != "smoke"
    arguments = {"parameters": job.injected(run_dir), "kernel_name": kernel_name, "progress_bar": False}
    saved_log = os.environ.get(KERNEL_LOG_ENV)
    os.environ[KERNEL_LOG_ENV] = str((run_dir / "kernel.log").resolve())  # the kernel's stderr: not the console
    try:
        if not per_cell:
            papermill.execute_notebook(str(job.notebook), str(run_dir / EXECUTED_NOTEBOOK), prepare_only=True,
                                       **arguments)
        papermill.execute_notebook(
            str(job.notebook),
            str(run_dir / EXECUTED_NOTEBOOK),
            cwd=str(job.notebook.parent),
            log_output=True,
            extra_arguments=KERNEL_ARGUMENTS,
            kernel_manager_class=KERNEL_MANAGER,
            request_save_on_cell_execute=per_cell,
            **arguments,
        )
        status, error = "ok", ""
        if not (run_dir / RESULTS_FILENAME).is_file():
            status, error = "failed", f"the notebook finished without writing {RESULTS_FILENAME}"
    except Exception as err:  # any failure of one run must not stop the batch
        status, error = "failed", _describe_failure(err)
    finally:
        if saved_log is None:
            os.environ.pop(KERNEL_LOG_ENV, None)
        else:
            os.environ[KERNEL_LOG_ENV] = saved_log
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    if error:
        error = _record_failure(run_dir, error)
    seconds = (datetime.now(timezone.utc) - start).total_seconds()
    return JobOutcome(job, run_dir, status, error, seconds)


def _move_aside(run_dir: Path) -> Path:
    for n in range(1, 1000):
        target = run_dir.with_name(f"{run_dir.name}.failed-{n}")
        if not target.exists():
            run_dir.rename(target)
            return target
    raise RunnerError(f"{run_dir}: too many failed attempts kept")


def run_jobs(
    jobs: Sequence[Job],
    batch_dir: Path,
    *,
    resume: bool = False,
    kernel_name: str = "python3",
    show_progress: bool = True,
) -> list[JobOutcome]:
    """Execute ``jobs`` one after another into ``batch_dir``; a failing job does not stop the others."""
    from tqdm.auto import tqdm

    outcomes: list[JobOutcome] = []
    with (
        _kernel_environment(jobs[0].profile if jobs else "smoke"),
        tqdm(jobs, desc="reproduce", unit="run", file=sys.stderr, disable=not show_progress) as bar,
    ):
        for job in bar:
            bar.set_postfix_str(str(job.folder))
            run_dir = batch_dir / job.folder
            checkpoints_from = None
            if run_dir.exists():
                if not resume:
                    raise RunnerError(f"{run_dir} exists; run folders are never overwritten")
                if (run_dir / RESULTS_FILENAME).is_file():
                    outcomes.append(JobOutcome(job, run_dir, "skipped"))
                    continue
                checkpoints_from = _move_aside(run_dir) / CHECKPOINTS
            outcome = _run_one(job, run_dir, kernel_name, checkpoints_from)
            if outcome.status == "failed":
                bar.write(f"FAILED {job.folder}: {outcome.error}")
            outcomes.append(outcome)
    return outcomes


# ---- what a batch was started with, and what --resume may continue -------------------------------------------

# parameters the runner sets itself, and the option that controls each
_RUNNER_SET = {"seed": "--seeds N", "experiment": "--rows", "output_dir": "--out", "profile": "--profile"}


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse ``--set`` of a parameter the runner injects (it would be silently replaced) and of an old spelling
    (:data:`r3f_utils.params.RENAMED`)."""
    for key in overrides:
        if renamed(key):
            raise RunnerError(f"--set {key}=...: {renamed(key)}")
        if key in _RUNNER_SET:
            raise RunnerError(
                f"--set {key}=...: the runner sets {key!r} for every run (it would silently replace yours); "
                f"use {_RUNNER_SET[key]} instead"
            )


@dataclass(frozen=True)
class BatchManifest:
    """The settings a batch was started with (``<batch>/batch.json``)."""

    profile: str
    experiments: tuple[str, ...]
    seeds: int | None
    overrides: dict[str, Any]


def write_batch_manifest(batch_dir: Path, jobs: Sequence[Job], *, seeds: int | None,
                         overrides: Mapping[str, Any]) -> Path:
    """Record the batch's profile, experiments, ``--seeds`` and ``--set`` overrides (atomically)."""
    import json

    from .atomic import atomic_write_text

    payload = {
        "schema_version": 1,
        "profile": jobs[0].profile if jobs else "smoke",
        "experiments": list(dict.fromkeys(j.experiment for j in jobs)),
        "seeds": seeds,
        "overrides": dict(overrides),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_write_text(batch_dir / BATCH_MANIFEST, json.dumps(payload, indent=2) + "\n")


def read_batch_manifest(batch_dir: Path) -> BatchManifest | None:
    """The batch's manifest; None where ``batch_dir`` holds no batch.json (not a batch). RunnerError if unreadable."""
    import json

    path = batch_dir / BATCH_MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BatchManifest(str(data["profile"]), tuple(data["experiments"]), data.get("seeds"),
                             dict(data.get("overrides") or {}))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunnerError(f"{path}: unreadable batch manifest ({err}); start a new batch instead of --resume") from None


def missing_manifest(folder: Path, fix: str) -> str:
    """Why ``folder`` is no batch (it holds no batch.json) and what to do: ``fix``, or the batch folder nearby
    (above a run folder, or below a folder of batches) to point at instead."""
    nearby = [p for p in (batch_of(folder),) if p is not None]
    if not nearby and folder.is_dir():
        nearby = sorted(p for p in folder.iterdir() if (p / BATCH_MANIFEST).is_file())
    hint = ""
    if nearby:
        hint = f"; or point at the batch folder itself ({', '.join(str(p) for p in nearby[:3])}" + \
            (" ..." if len(nearby) > 3 else "") + ")"
    return (f"{folder} holds no {BATCH_MANIFEST}, so it is no batch of `reproduce` (a batch made before batches "
            f"recorded their manifest, or one whose {BATCH_MANIFEST} was deleted): {fix}{hint}")


def require_batch_manifest(batch_dir: Path, fix: str) -> BatchManifest:
    """The manifest of a folder that must be a batch; RunnerError naming the missing batch.json and ``fix``."""
    manifest = read_batch_manifest(batch_dir)
    if manifest is None:
        raise RunnerError(missing_manifest(batch_dir, fix))
    return manifest


_RESUME_FIX = "re-run the rows as a new batch (`reproduce --rows ...` without --resume)"


def batch_experiments(batch_dir: Path) -> tuple[str, ...]:
    """Experiments of a batch, as its manifest records them (RunnerError without one)."""
    return require_batch_manifest(batch_dir, _RESUME_FIX).experiments


def check_resumable(jobs: Sequence[Job], batch_dir: Path, overrides: Mapping[str, Any]) -> None:
    """Refuse a ``--resume`` whose plan differs from what the batch ran: another profile, other ``--set``
    overrides than recorded, or a finished seed whose ``results.json`` holds other parameter values; or a folder
    without the batch's manifest."""
    import json

    manifest = require_batch_manifest(batch_dir, _RESUME_FIX)
    problems: list[str] = []
    ran = manifest.experiments
    foreign = [e for e in dict.fromkeys(j.experiment for j in jobs) if e not in ran]
    if foreign:  # --rows naming rows the batch never ran: they would be a new experiment inside an old batch
        problems.append(f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not in this batch (it ran "
                        f"{', '.join(ran) or 'nothing'}): run {'it' if len(foreign) == 1 else 'them'} as a new batch "
                        "(without --resume), or leave --rows out to resume the batch's own rows")
    if jobs and jobs[0].profile != manifest.profile:
        problems.append(f"the batch ran profile {manifest.profile!r}, this plan {jobs[0].profile!r}")
    if dict(overrides) != manifest.overrides:
        def shown(o: Mapping[str, Any]) -> str:
            return " ".join(f"--set {k}={v}" for k, v in o.items()) or "no --set"

        problems.append(f"the batch ran with {shown(manifest.overrides)}, this plan has {shown(overrides)}")
    for job in jobs:
        results = batch_dir / job.folder / RESULTS_FILENAME
        if not results.is_file():
            continue
        try:
            recorded = json.loads(results.read_text(encoding="utf-8")).get("parameters", {})
        except (OSError, ValueError):
            continue  # the checker reports unreadable files
        for key, value in job.parameters.items():
            if value is not None and key in recorded and recorded[key] != value:
                problems.append(f"{job.folder} was run with {key}={recorded[key]!r}, this plan has {key}={value!r}")
    if problems:
        raise RunnerError(
            f"--resume {batch_dir}: the plan does not match the batch: " + "; ".join(problems)
            + ". Resume with the batch's own settings (omit --set/--profile to reuse them) or start a new batch"
        )
