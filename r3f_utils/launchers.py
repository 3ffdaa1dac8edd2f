"""Where ``reproduce`` runs its (experiment, seed) jobs: ``local`` (a pool of processes on this machine, each pinned
to its own GPU) or ``slurm`` (one SLURM job array through submitit).

Every launcher executes a job the same way: :func:`r3f_utils.runner.run_jobs` on that one job, in the process
the launcher gives it. So run folders, the never-overwrite rule, resume (skip finished seeds, move a failed
attempt aside and carry its checkpoints into the rerun) and the failed-cell report are the runner's, whatever
the launcher; ``reproduce`` then checks the batch folder as before.

``local``: ``--jobs N`` processes at once (default: one per visible GPU; on CPU ``os.cpu_count() //`` the
threads one run uses: 1 for the smoke profile's tiny models). On GPUs each worker gets one device through
``CUDA_VISIBLE_DEVICES``; CPU workers of the cpu/paper profiles split the cores with ``OMP_NUM_THREADS``.
Each worker forks the fresh kernels of the package's notebooks from a zygote that imported torch & co once
(:mod:`r3f_utils.warm_kernel`; ``--cold-kernels`` turns it off).

``slurm``: one array of jobs (partition, time, GPUs per job... from flags or a YAML file), submitted with
submitit, which also has a local executor (``executor: local``) that runs the same submission path without
SLURM (the tests use it). ``launcher.json`` in the batch folder records the job ids; ``--detach`` returns after
submitting, and ``reproduce --resume DIR --launcher slurm`` later collects what finished, leaves jobs that are
still queued or running alone and resubmits the seeds whose job died.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text
from .layout import RESULTS_FILENAME
from .package_data import notebooks_dir
from .runner import Job, JobOutcome, RunnerError, run_jobs

__all__ = [
    "LAUNCHERS",
    "SlurmOptions",
    "check_slurm_available",
    "default_jobs",
    "read_slurm_options",
    "run_local",
    "run_slurm",
    "slot_environments",
    "submit_slurm",
    "visible_gpus",
]

LAUNCHERS = ("local", "slurm")
SLURM_EXECUTORS = ("slurm", "local")
LAUNCHER_RECORD = "launcher.json"  # in the batch folder: which job ran which run folder


# ---------------------------------------------------------------------------------------------------- local


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else what ``nvidia-smi -L`` lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(ln for ln in listing.splitlines() if ln.startswith("GPU "))]


def _uses_gpus(profile: str) -> bool:
    return profile != "smoke"  # the smoke profile is CPU by design (tiny models, machine-independent values)


def default_jobs(profile: str, gpus: Sequence[str] | None = None) -> int:
    """One job per visible GPU; on CPU ``os.cpu_count() //`` threads per run (smoke: 1 thread, else all cores)."""
    gpus = visible_gpus() if gpus is None else gpus
    if gpus and _uses_gpus(profile):
        return len(gpus)
    cores = os.cpu_count() or 1
    threads_per_run = 1 if profile == "smoke" else cores
    return max(1, cores // threads_per_run)


def slot_environments(jobs: int, profile: str, gpus: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The environment of each of ``jobs`` workers: its own GPU (round robin when there are fewer GPUs than
    workers), or no GPU and a share of the cores."""
    if jobs < 1:
        raise RunnerError(f"--jobs must be at least 1, not {jobs}")
    gpus = visible_gpus() if gpus is None else list(gpus)
    if gpus and _uses_gpus(profile):
        return [{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(jobs)]
    if profile == "smoke":  # the runner keeps smoke on CPU (unless the caller says otherwise); 1 thread per model
        return [{} for _ in range(jobs)]
    return [{"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))} for _ in range(jobs)]


def longest_first(jobs: Sequence[Job]) -> list[int]:
    """Indices of ``jobs``, the most work first (:func:`r3f_utils.describe.relative_cost` of the family's defaults
    updated with the run's parameters, ties in batch order): a pool that starts the long runs first does not end
    with one long run on one worker while the others idle."""
    from .describe import relative_cost
    from .families import family_of

    costs = []
    for job in jobs:
        family = family_of(job.notebook)  # a notebook outside the table: ordered by its parameters alone
        costs.append(relative_cost(job.notebook.name, {**(family.defaults() if family else {}), **job.parameters}))
    return sorted(range(len(jobs)), key=lambda i: -costs[i])


_worker: dict[str, Any] = {"warm_kernel": None}


@contextlib.contextmanager
def _warm(profile: str, kernel_name: str, enabled: bool) -> Iterator[str]:
    """A zygote for fresh kernels with the imports done (:mod:`r3f_utils.warm_kernel`), when the default
    kernel is asked for; else ``kernel_name`` as it is."""
    if not enabled or kernel_name != "python3":
        yield kernel_name
        return
    from .runner import _kernel_environment
    from .warm_kernel import warm_kernels

    with _kernel_environment(profile), warm_kernels() as name:  # the zygote gets the kernels' environment
        yield name


def _exit_with_parent(parent: int) -> None:
    """In a pool worker: exit when ``reproduce`` is gone (killed): the run in flight and its kernel stop too."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


class _InterruptedKernelTasks(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for nbclient cell tasks that a Ctrl-C left behind
    (their kernel died with the batch): after an interrupt the batch prints one line, not their tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0] if record.exc_info else None
        return not (record.getMessage().startswith("Task exception was never retrieved") and exc is not None
                    and exc.__name__ in ("DeadKernelError", "KeyboardInterrupt", "CancelledError"))


def quiet_interrupted_kernel_tasks() -> None:
    """Install :class:`_InterruptedKernelTasks` on the ``asyncio`` logger (once per process)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _InterruptedKernelTasks) for f in logger.filters):
        logger.addFilter(_InterruptedKernelTasks())


def _init_worker(slots: Any, profile: str, kernel_name: str, warm: bool) -> None:
    """Pool initializer: take one slot's environment (its GPU) and start its kernel zygote, for the worker's life."""
    from multiprocessing.util import Finalize

    quiet_interrupted_kernel_tasks()
    os.environ.update(slots.get())
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    stack = contextlib.ExitStack()
    _worker["warm_kernel"] = stack.enter_context(_warm(profile, kernel_name, warm))
    Finalize(None, stack.close, exitpriority=10)  # stop the zygote, remove its folder when the worker exits


def _execute(job: Job, batch_dir: Path, resume: bool, kernel_name: str) -> JobOutcome:
    """One job, the runner's way (in a pool worker or a SLURM job)."""
    kernel_name = _worker["warm_kernel"] or kernel_name
    outcome = run_jobs([job], batch_dir, resume=resume, kernel_name=kernel_name, show_progress=False)[0]
    outcome.extra.setdefault("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
    return outcome


def run_local(
    jobs: Sequence[Job],
    batch_dir: Path,
    *,
    n_jobs: int | None = None,
    resume: bool = False,
    kernel_name: str = "python3",
    show_progress: bool = True,
    gpus: Sequence[str] | None = None,
    warm_kernels: bool = True,
) -> list[JobOutcome]:
    """Run ``jobs`` with up to ``n_jobs`` at once (default :func:`default_jobs`); outcomes in job order.

    ``warm_kernels``: each worker forks its fresh kernels from a process that imported torch & co once
    (:mod:`r3f_utils.warm_kernel`; only for the default ``python3`` kernel).
    """
    if not jobs:
        return []
    profile = jobs[0].profile
    # the zygote preloads what the package's experiment notebooks import; other notebooks start cold
    notebooks = notebooks_dir().resolve()
    warm_kernels = warm_kernels and all(j.notebook.resolve().parent == notebooks for j in jobs)
    n_jobs = n_jobs or default_jobs(profile, gpus)
    envs = slot_environments(min(n_jobs, len(jobs)), profile, gpus)
    if len(envs) == 1:  # no pool: this process, pinned like a worker
        saved = {k: os.environ.get(k) for k in envs[0]}
        os.environ.update(envs[0])
        try:
            with _warm(profile, kernel_name, warm_kernels) as name:
                return run_jobs(jobs, batch_dir, resume=resume, kernel_name=name, show_progress=show_progress)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads or CUDA state
    slots = context.Queue()
    for env in envs:
        slots.put(env)
    outcomes: dict[int, JobOutcome] = {}
    others = set(multiprocessing.active_children())  # children of this process that are not the pool's workers
    pool = ProcessPoolExecutor(len(envs), mp_context=context, initializer=_init_worker,
                               initargs=(slots, profile, kernel_name, warm_kernels))
    try:
        with tqdm(total=len(jobs), desc=f"reproduce ({len(envs)} at once)", unit="run", file=sys.stderr,
                  disable=not show_progress) as bar:
            futures = {pool.submit(_execute, jobs[i], batch_dir, resume, kernel_name): i
                       for i in longest_first(jobs)}
            for future in as_completed(futures):
                outcome = future.result()  # a RunnerError (an existing run folder) stops the batch, as in run_jobs
                outcomes[futures[future]] = outcome
                if outcome.status == "failed":
                    bar.write(f"FAILED {outcome.job.folder}: {outcome.error}")
                bar.set_postfix_str(str(outcome.job.folder))
                bar.update()
    except BaseException:  # Ctrl-C or an error: start nothing more and stop the runs in flight
        pool.shutdown(wait=False, cancel_futures=True)
        for process in set(multiprocessing.active_children()) - others:  # the workers: queued calls too
            process.terminate()  # its kernel goes with it (warm: the stand-in kills it; cold: parent poller)
        raise
    pool.shutdown()
    return [outcomes[i] for i in range(len(jobs))]


# ---------------------------------------------------------------------------------------------------- slurm


@dataclass
class SlurmOptions:
    """What each SLURM job asks for; ``executor: local`` runs the same submission on this machine (no SLURM)."""

    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    mem_gb: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int = 64  # jobs of the array running at once
    setup: list[str] = field(default_factory=list)  # shell lines before each job (module load, conda activate)
    additional: dict[str, Any] = field(default_factory=dict)  # any other sbatch option, e.g. {"exclude": "node3"}
    executor: str = "slurm"

    def __post_init__(self) -> None:
        if self.executor not in SLURM_EXECUTORS:
            raise RunnerError(f"slurm executor must be one of {', '.join(SLURM_EXECUTORS)}, not {self.executor!r}")
        for name in ("time_min", "cpus_per_job", "array_parallelism"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RunnerError(f"slurm option {name} must be a positive integer, not {value!r}")
        if isinstance(self.gpus_per_job, bool) or not isinstance(self.gpus_per_job, int) or self.gpus_per_job < 0:
            raise RunnerError(f"slurm option gpus_per_job must be an integer >= 0, not {self.gpus_per_job!r}")


def read_slurm_options(path: str | Path | None = None, **overrides: Any) -> SlurmOptions:
    """Options from a YAML file (keys: the :class:`SlurmOptions` fields), then non-None ``overrides`` (flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise RunnerError(f"--slurm-config {path}: {err}") from err
        if not isinstance(loaded, Mapping):
            raise RunnerError(f"--slurm-config {path}: expected a mapping of options")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(SlurmOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RunnerError(f"unknown slurm option(s) {unknown}; known: {sorted(known)}")
    return SlurmOptions(**data)


def check_slurm_available(options: SlurmOptions) -> None:
    """RunnerError, before any folder is made, when ``--launcher slurm`` cannot work here: submitit missing, or
    (executor ``slurm``) no ``sbatch``/``srun`` on the PATH."""
    import importlib.util

    if importlib.util.find_spec("submitit") is None:
        raise RunnerError("--launcher slurm needs submitit, which is not installed: pip install 'r3f-repro[slurm]' "
                          "(or pip install submitit)")
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if options.executor == "slurm" and missing:
        raise RunnerError(f"--launcher slurm: {' and '.join(missing)} not found on the PATH (not a SLURM login "
                          "node?): run it where SLURM is installed, use --launcher local, or --slurm-executor local "
                          "to try the submission on this machine")


def _executor(options: SlurmOptions, folder: Path, name: str) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=options.executor)
    params: dict[str, Any] = {
        "name": name, "timeout_min": options.time_min, "gpus_per_node": options.gpus_per_job,
        "cpus_per_task": options.cpus_per_job, "tasks_per_node": 1, "nodes": 1,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.mem_gb is not None:
        params["mem_gb"] = options.mem_gb
    if options.partition:
        params["slurm_partition"] = options.partition
    extra = {k: v for k, v in (("account", options.account), ("qos", options.qos),
                                 ("constraint", options.constraint)) if v}
    extra.update(options.additional)
    if extra:
        params["slurm_additional_parameters"] = extra
    if options.setup:
        params["slurm_setup"] = list(options.setup)
        params["local_setup"] = list(options.setup)
    executor.update_parameters(**params)
    return executor


def _read_record(batch_dir: Path) -> dict[str, Any]:
    path = batch_dir / LAUNCHER_RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"jobs": {}}


def _write_record(batch_dir: Path, record: Mapping[str, Any]) -> None:
    atomic_write_text(batch_dir / LAUNCHER_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _still_running(executor: str, folder: Path, job_id: str) -> bool:
    """Is the job that was submitted for a run folder queued or running (so not to be submitted again)?"""
    if executor == "local":  # the local executor's job id is its controller's pid
        try:
            os.kill(int(job_id), 0)
        except (OSError, ValueError):
            return False
        try:  # a zombie (exited, not yet reaped) is not running
            return Path(f"/proc/{job_id}/stat").read_text().split()[2] != "Z"
        except OSError:
            return True
    import submitit

    state = submitit.SlurmJob(folder=folder / "%j", job_id=job_id).state
    return state.upper() in {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
                             "SUSPENDED", "UNKNOWN"}


def submit_slurm(
    jobs: Sequence[Job],
    batch_dir: Path,
    options: SlurmOptions,
    *,
    kernel_name: str = "python3",
) -> tuple[list[JobOutcome], list[tuple[Job, Any]]]:
    """Submit the jobs that still need a run as one array; return (outcomes decided without a job: finished
    seeds ``skipped``, seeds whose job is still queued/running ``running``) and the (job, submitit job) pairs."""
    record = _read_record(batch_dir)
    record.setdefault("jobs", {})
    folder = batch_dir / "slurm"
    decided: list[JobOutcome] = []
    to_submit: list[Job] = []
    for job in jobs:
        run_dir = batch_dir / job.folder
        previous = record["jobs"].get(str(job.folder))
        if (run_dir / RESULTS_FILENAME).is_file():
            decided.append(JobOutcome(job, run_dir, "skipped"))
        elif previous and _still_running(record.get("executor", options.executor), folder, previous):
            decided.append(JobOutcome(job, run_dir, "running", f"job {previous} is still queued or running"))
        else:
            to_submit.append(job)
    submitted: list[tuple[Job, Any]] = []
    if to_submit:
        executor = _executor(options, folder, name=f"r3f-{batch_dir.name}")
        # resume=True inside the job: a requeued or resubmitted seed moves its failed attempt aside, keeps its
        # checkpoints and never touches a finished run
        handles = executor.map_array(_execute, to_submit, [batch_dir] * len(to_submit), [True] * len(to_submit),
                                     [kernel_name] * len(to_submit))
        submitted = list(zip(to_submit, handles, strict=True))
        record["executor"] = options.executor
        record["options"] = asdict(options)
        record["jobs"].update({str(job.folder): str(handle.job_id) for job, handle in submitted})
        _write_record(batch_dir, record)
    return decided, submitted


def _collect(job: Job, handle: Any, batch_dir: Path) -> JobOutcome:
    run_dir = batch_dir / job.folder
    try:
        outcome: JobOutcome = handle.result()
    except Exception as err:  # killed, timed out, node failure: the seed stays unfinished for --resume
        first = str(err).strip().splitlines()
        return JobOutcome(job, run_dir, "failed", f"job {handle.job_id} did not finish ({type(err).__name__}: "
                          f"{first[0] if first else ''}); logs: {handle.paths.stderr}")
    return outcome


def run_slurm(
    jobs: Sequence[Job],
    batch_dir: Path,
    options: SlurmOptions,
    *,
    kernel_name: str = "python3",
    wait: bool = True,
    poll_s: float = 30.0,
    show_progress: bool = True,
) -> list[JobOutcome]:
    """Submit (see :func:`submit_slurm`); with ``wait``, block until every job ended and return all outcomes in
    job order, else return at once (the submitted seeds as ``submitted``)."""
    decided, submitted = submit_slurm(jobs, batch_dir, options, kernel_name=kernel_name)
    by_folder = {o.job.folder: o for o in decided}
    if submitted:
        ids = ", ".join(str(h.job_id) for _, h in submitted[:3]) + (" ..." if len(submitted) > 3 else "")
        print(f"submitted {len(submitted)} jobs ({options.executor}: {ids}); logs in {batch_dir / 'slurm'}",
              file=sys.stderr)
    if not wait:
        for job, handle in submitted:
            by_folder[job.folder] = JobOutcome(job, batch_dir / job.folder, "submitted", f"job {handle.job_id}")
        return [by_folder[j.folder] for j in jobs]
    from tqdm.auto import tqdm

    pending = list(submitted)
    wait_s = 0.2
    with tqdm(total=len(submitted), desc="reproduce (slurm)", unit="run", file=sys.stderr,
              disable=not show_progress) as bar:
        while pending:
            still = []
            for job, handle in pending:
                if handle.done():
                    outcome = _collect(job, handle, batch_dir)
                    by_folder[job.folder] = outcome
                    if outcome.status == "failed":
                        bar.write(f"FAILED {job.folder}: {outcome.error}")
                    bar.update()
                else:
                    still.append((job, handle))
            pending = still
            if pending:
                time.sleep(wait_s)
                wait_s = min(poll_s, wait_s * 2)  # short jobs are collected quickly, long ones polled rarely
    return [by_folder[j.folder] for j in jobs]


# ---------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: Any) -> None:
    """``reproduce``'s launcher flags (``parser`` is an argparse parser)."""
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="local: a pool of processes on this machine (default); slurm: a SLURM job array")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="local: runs at once (default: one per visible GPU; on CPU one per core for smoke)")
    parser.add_argument("--cold-kernels", action="store_true",
                        help="local: start every kernel from scratch instead of forking it from a warm zygote")
    group = parser.add_argument_group("slurm launcher (flags override --slurm-config)")
    group.add_argument("--slurm-config", metavar="FILE", help="YAML of SlurmOptions (partition, time_min, ...)")
    group.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    group.add_argument("--time-min", type=int, help="minutes per job (default 1440)")
    group.add_argument("--gpus-per-job", type=int, help="default 1")
    group.add_argument("--cpus-per-job", type=int, help="default 8")
    group.add_argument("--mem-gb", type=int, help="memory per job in GB (default: the cluster's)")
    group.add_argument("--slurm-executor", choices=SLURM_EXECUTORS,
                       help="local runs the submission on this machine without SLURM (submitit's local executor)")
    group.add_argument("--detach", action="store_true",
                       help="return after submitting; collect later with --resume DIR --launcher slurm")


def from_args(args: Any) -> Any:
    """The launch function the flags ask for: ``launch(jobs, batch_dir, resume=, kernel_name=) -> outcomes``.
    Raises RunnerError for bad flags (before anything runs)."""
    if args.launcher == "local":
        if args.jobs is not None and args.jobs < 1:
            raise RunnerError(f"--jobs must be at least 1, not {args.jobs}")

        def launch_local(jobs: Sequence[Job], batch_dir: Path, *, resume: bool, kernel_name: str) -> list[JobOutcome]:
            return run_local(jobs, batch_dir, n_jobs=args.jobs, resume=resume, kernel_name=kernel_name,
                             warm_kernels=not args.cold_kernels)

        return launch_local
    options = read_slurm_options(args.slurm_config, partition=args.partition, time_min=args.time_min,
                                 gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
                                 mem_gb=args.mem_gb, executor=args.slurm_executor)
    check_slurm_available(options)

    def launch_slurm(jobs: Sequence[Job], batch_dir: Path, *, resume: bool, kernel_name: str) -> list[JobOutcome]:
        return run_slurm(jobs, batch_dir, options, kernel_name=kernel_name, wait=not args.detach)

    return launch_slurm
