"""``python -m r3f_utils``: validate | ls | reproduce | check | report | pin (one small function each)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .launchers import add_arguments as add_launcher_arguments
from .registry import (
    DEFAULT_REGISTRY,
    PROFILES,
    Claim,
    Registry,
    RegistryError,
    RegistryRow,
    load_registry,
    read_registry,
    select_claims,
    select_rows,
)
from .runner import RunnerError
from .train import add_arguments as add_train_arguments

__all__ = ["main"]

# (subcommand, arguments, comment): the one list of examples; `--help` shows them all, `<command> --help` its own
EXAMPLES = (
    ("validate", "validate", "registry incl. notebook parameters"),
    ("ls", "ls --rows 'table4.*'", "list rows (fnmatch patterns)"),
    ("reproduce", "reproduce", "smoke profile of every target row, CPU, offline"),
    ("reproduce", "reproduce --rows 'table2?.rte.*r3f' --profile paper --dry-run", "the plan and its GPU-hours"),
    ("reproduce", "reproduce --rows 'table2?.rte.*r3f' --profile paper --out runs", ""),
    ("reproduce", "reproduce --resume runs/20250101T120000Z --rows 'table2?.rte.*'", ""),
    ("check", "check --results runs/20250101T120000Z", "the rows and profile the batch ran"),
    ("check", "check --results runs/20250101T120000Z --all-rows", "every registry row"),
    ("report", "report --results runs/20250101T120000Z", "report.md + report.html"),
    ("report", "report --results runs/20250101T120000Z --format model-index", "model-index.yaml/.json"),
    ("pin", "pin --results runs/20250101T120000Z --rows 'table2*'", "re-pin smoke values on purpose"),
    ("train", "train glue --set task=mrpc --set method=r4f", "one run as a script (torchrun ready)"),
)
EXIT_CODES = """exit codes of check (and reproduce): 0 nothing failed, 1 a row is below tolerance / invalid / a claim
fails / a run failed (--strict: also anything missing), 2 unusable input (registry invalid, no result
files, malformed results.json, --rows matching nothing)."""


def invoked_name(argv0: str | None = None) -> str:
    """The name the user typed: ``r3f-repro`` (the console script), else ``python -m r3f_utils``."""
    name = Path(sys.argv[0] if argv0 is None else argv0).name
    if not name or name in ("-c", "-m") or name.endswith(".py"):
        return "python -m r3f_utils"
    return name


def epilog(prog: str, command: str | None = None) -> str:
    """The examples (all, or ``command``'s) and, where they apply, the exit codes."""
    lines = [(f"{prog} {args}", note) for cmd, args, note in EXAMPLES if command in (None, cmd)]
    text = "examples:\n" + "\n".join(f"  {t}" + (f"  # {n}" if n else "") for t, n in lines)
    if command in (None, "check", "reproduce"):
        text += "\n\n" + EXIT_CODES
    if command is not None:
        text += f"\n\nall commands: {prog} --help"
    return text + "\n"


def _load(path: str, *, check_notebooks: bool = False) -> list[RegistryRow]:
    return load_registry(path, check_notebooks=check_notebooks)


def _load_with_results(args: argparse.Namespace) -> tuple[Registry, list] | None:
    """The registry and the records under ``--results``; None (after printing why) when either is unusable."""
    from .results import ResultsError, read_results

    try:
        return read_registry(args.registry, check_notebooks=False), read_results(args.results)
    except (RegistryError, ResultsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def _selection(registry: Registry, patterns: list[str] | None) -> tuple[list[RegistryRow], list[Claim]]:
    """Rows and claims matching ``--rows`` (a claim brings the rows of the experiments it compares)."""
    rows = select_rows(registry.rows, patterns, registry.claims)
    claims = select_claims(registry.claims, patterns)
    if patterns and not rows and not claims:
        raise RegistryError([f"--rows {' '.join(patterns)}: matches no row, experiment or claim id "
                             "(see `python -m r3f_utils ls`)"])
    return rows, claims


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate the registry; exit 1 on any problem."""
    try:
        rows = _load(args.registry, check_notebooks=not args.no_notebooks)
    except RegistryError as err:
        print(f"registry invalid ({len(err.errors)} problems):", file=sys.stderr)
        print("\n".join(f"  {e}" for e in err.errors), file=sys.stderr)
        return 1
    targets = sum(r.role == "target" for r in rows)
    numbers = sum(len(r.numbers) for r in rows)
    claims = read_registry(args.registry, check_notebooks=False).claims
    print(
        f"{args.registry}: OK, {len(rows)} rows ({targets} target), {numbers} numbers, {len(claims)} claims"
        + (" (notebooks not checked)" if args.no_notebooks else "")
    )
    if args.profile == "paper":  # what each row downloads and costs; 1 when a row cannot run as registered
        from .describe import validate_paper_profile

        return validate_paper_profile(rows)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List rows matching ``--rows``."""
    from .fidelity import fidelity_summary

    registry = read_registry(args.registry, check_notebooks=False)
    rows = select_rows(registry.rows, args.rows)
    claims = select_claims(registry.claims, args.rows) if args.role in (None, "claim") else []
    if args.role:
        rows = [r for r in rows if r.role == args.role]
    for r in rows:
        metrics = ", ".join(f"{k}={'-' if v is None else format(v, 'g')}" for k, v in r.metrics.items())
        settings = fidelity_summary(r)  # issue 18: the paper profile's fidelity choices
        print(f"{r.id:<42} {r.role:<8} {r.aggregation:<12} {r.experiment:<38} {metrics}"
              + (f"  [{settings}]" if settings else ""))
    for c in claims:
        print(f"{c.id:<42} {'claim':<8} {c.aggregation:<12} {c.statement}")
    print(f"{len(rows)} rows, {len(claims)} claims", file=sys.stderr)
    return 0


def _only_unknown_rows(rows: Sequence[RegistryRow], records: Sequence, args: argparse.Namespace) -> str:
    """Why a check would pass on nothing ("" if it would not): results whose experiments are all unknown to the
    registry (wrong folder or registry)."""
    known = {r.id for r in rows} | {r.experiment for r in rows}
    mine = [r for r in records if r.profile == args.profile]
    if mine and not any(r.experiment in known for r in mine):
        names = sorted({r.experiment for r in mine})
        return (f"none of the results under {args.results} belongs to a row of {args.registry} (they name "
                f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}): wrong --registry or results folder?")
    return ""


def _scope(args: argparse.Namespace, registry: Registry, records: Sequence) -> tuple[str, list[RegistryRow],
                                                                                   list[Claim]]:
    """The profile, rows and claims ``check``/``report`` look at: ``--profile``/``--rows`` when given, else what
    the batch ran (its ``batch.json``); ``--all-rows``: the whole registry. RunnerError/RegistryError when the
    results hold nothing of that profile."""
    from .batch_scope import batch_scope, resolve_profile, rows_of_experiments

    scope = None if args.profile and (args.rows or args.all_rows) else batch_scope(args.results)
    profile = resolve_profile(args.profile, scope, records, args.results)
    if not any(r.profile == profile for r in records):
        found = sorted({r.profile for r in records})
        raise RunnerError(f"no results.json of profile {profile!r} under {args.results}"
                          + (f" (found profile {', '.join(found)}; see --profile)" if found else ""))
    if args.rows or args.all_rows:
        rows, claims = _selection(registry, args.rows)
    elif scope is not None:
        rows, claims = rows_of_experiments(registry, scope.experiments)
        print(f"{args.command}: profile {profile}, the {len(scope.experiments)} experiment(s) the batch ran "
              f"({len(rows)} rows, {len(claims)} claims); --all-rows for the whole registry", file=sys.stderr)
    else:
        rows, claims = registry.rows, registry.claims
    return profile, rows, claims


def cmd_check(args: argparse.Namespace) -> int:
    """Check results under ``--results`` against the registry; print the table."""
    from .checker import check, exit_code, format_table

    loaded = _load_with_results(args)
    if loaded is None:
        return 2
    registry, records = loaded
    try:
        args.profile, rows, claims = _scope(args, registry, records)
    except (RegistryError, RunnerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problem = _only_unknown_rows(registry.rows, records, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    result = check(rows, records, args.profile, include_reported=args.include_reported, claims=claims)
    print(format_table(result))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return exit_code(result, strict=args.strict)


def _write_report(rows: Sequence[RegistryRow], claims: Sequence[Claim], records: Sequence, out: str | Path,
                  profile: str) -> tuple[Path, Path]:
    """Check ``records`` of ``profile`` on ``rows``/``claims``; write report.md / report.html into ``out``."""
    from .checker import check
    from .report import write_report

    result = check(rows, records, profile, include_reported=True, claims=claims)
    return write_report(rows, result, out, records=records)


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.md / report.html (or the model-index export) for the results under ``--results``."""
    from .atomic import OutputError, describe_os_error

    loaded = _load_with_results(args)
    if loaded is None:
        return 2
    registry, records = loaded
    out = Path(args.out or args.results)
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} is a file, not a folder: name a folder (report.md, report.html and the figures "
              "go into it; it is made if missing)", file=sys.stderr)
        return 2
    try:
        profile, rows, claims = _scope(args, registry, records)
        if args.format == "model-index":
            from .checker import check
            from .model_index import write_model_index

            result = check(rows, records, profile, include_reported=False, claims=claims)
            paths = write_model_index(rows, result, out)
        else:
            paths = _write_report(rows, claims, records, out, profile)
    except (RegistryError, RunnerError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file in the way of a folder on --out's path, a read-only parent, ...
        print(f"error: {describe_os_error(out, err)}", file=sys.stderr)
        return 2
    print(f"wrote {' and '.join(str(p) for p in paths)}")
    return 0


def _resume_defaults(args: argparse.Namespace) -> None:
    """``--resume DIR``: rows, profile, seeds and ``--set`` default to what the batch was started with."""
    from .runner import require_batch_manifest

    batch = Path(args.resume)
    if not batch.is_dir():
        raise RunnerError(f"--resume {batch}: no such run folder")
    manifest = require_batch_manifest(
        batch, "--resume continues only a batch that recorded its settings; re-run the rows as a new batch "
        "(`reproduce --rows ...` without --resume)")
    if not args.rows:
        args.rows = list(manifest.experiments)  # only this batch's experiments, never every target row
        if not args.rows:
            raise RunnerError(f"--resume {batch}: its batch.json names no experiment; start a new batch instead")
    args.profile = args.profile or manifest.profile
    args.seeds = args.seeds or manifest.seeds
    if args.set is None:
        args.set = [f"{k}={v}" for k, v in manifest.overrides.items()]


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run the selected rows' notebooks (local pool or SLURM), then check the batch and write its report."""
    from . import launchers
    from .atomic import OutputError, describe_os_error
    from .checker import check, exit_code, format_table
    from .results import ResultsError, read_results
    from .runner import (
        check_overrides,
        check_resumable,
        new_batch_dir,
        parse_override,
        plan_jobs,
        validate_jobs,
        write_batch_manifest,
    )

    try:
        if args.resume:
            _resume_defaults(args)
        args.profile = args.profile or "smoke"
        registry = read_registry(args.registry, check_notebooks=False)
        rows, claims = _selection(registry, args.rows)
        overrides = dict(parse_override(s) for s in args.set or [])
        check_overrides(overrides)
        jobs = plan_jobs(rows, args.registry, profile=args.profile, seeds=args.seeds, overrides=overrides)
        if not jobs:
            raise RunnerError(f"no target row of profile {args.profile!r} matches {args.rows or 'the registry'}")
        validate_jobs(jobs)
        launch = launchers.from_args(args)  # local pool or SLURM array (r3f_utils.launchers)
        if args.dry_run:
            from .plan import format_plan

            print(format_plan(jobs, rows, args.profile, batch=Path(args.resume) if args.resume else None))
            return 0
        if args.resume:
            batch = Path(args.resume)
            check_resumable(jobs, batch, overrides)
        else:
            batch = new_batch_dir(args.out)
            write_batch_manifest(batch, jobs, seeds=args.seeds, overrides=overrides)
    except (RegistryError, RunnerError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --out read-only, a file, on a full disk
        print(f"error: {describe_os_error(args.out, err)}", file=sys.stderr)
        return 2
    print(f"{len(jobs)} runs into {batch}", file=sys.stderr)
    from .launchers import quiet_interrupted_kernel_tasks

    quiet_interrupted_kernel_tasks()  # serial runs execute here
    try:
        outcomes = launch(jobs, batch, resume=bool(args.resume), kernel_name=args.kernel)
    except KeyboardInterrupt:  # Ctrl-C: finished seeds are kept, the interrupted ones rerun on --resume
        print(f"\ninterrupted; resume with: {invoked_name()} reproduce --resume {batch}", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk where no run could record it: the batch stays resumable
        print(f"error: {describe_os_error(batch, err)}; then resume with: {invoked_name()} reproduce --resume {batch}",
              file=sys.stderr)
        return 2
    if any(o.status in ("submitted", "running") for o in outcomes):  # slurm --detach, or jobs still queued
        waiting = sum(o.status in ("submitted", "running") for o in outcomes)
        print(f"{waiting} runs queued or running; collect them with: python -m r3f_utils reproduce --resume {batch}"
              " --launcher slurm (same --rows/--profile/--seeds)", file=sys.stderr)
        return 0
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        print(f"FAILED {o.job.folder}: {o.error} (see {o.run_dir})", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)} ok/skipped, {len(failed)} failed", file=sys.stderr)
    try:
        records = read_results(batch)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = check(rows, records, args.profile, include_reported=False, claims=claims)
    print(format_table(result, failed_runs=len(failed)))
    try:
        _, html_path = _write_report(rows, claims, records, batch, args.profile)
        print(f"report: {html_path}")
    except (RunnerError, OutputError) as err:  # the runs are kept; only the page is missing
        print(f"warning: no report written: {err}", file=sys.stderr)
    return max(exit_code(result, strict=args.strict), 1 if failed else 0)


def cmd_pin(args: argparse.Namespace) -> int:
    """Write the smoke values found under ``--results`` into the rows' ``smoke.expected``."""
    from .pin import PinError, pin_smoke_expectations, with_experiment_siblings

    loaded = _load_with_results(args)
    if loaded is None:
        return 2
    registry, records = loaded
    selected = select_rows(registry.rows, args.rows)
    if args.rows and not selected:
        print(f"error: --rows {' '.join(args.rows)} matches no registry row", file=sys.stderr)
        return 2
    expanded = with_experiment_siblings(selected, registry.rows)
    for row in expanded:
        if row not in selected:
            print(f"also pinning {row.id}: the same experiment ({row.experiment}) feeds it", file=sys.stderr)
    try:
        changes = pin_smoke_expectations(args.registry, records, expanded, decimals=args.decimals)
    except (RegistryError, PinError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for row_id, values in changes.items():
        step = 10**-args.decimals
        moved = {m: (old, new) for m, (old, new) in values.items() if old is None or abs(new - old) > step}
        status = ", ".join(f"{m} {old} -> {new:.{args.decimals}f}" for m, (old, new) in moved.items()) or "unchanged"
        print(f"{row_id}: {status}")
    print(f"pinned {len(changes)} rows in {args.registry}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one experiment in this process (or one rank of it): see ``r3f_utils.train``."""
    from .train import run_from_args

    return run_from_args(args)


def _version() -> str:
    from . import __version__

    return __version__


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argparse tree of ``r3f-repro`` / ``python -m r3f_utils`` (``prog``: default the invoked name)."""
    prog = prog or invoked_name()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Result registry, batch runner, checker and report of r3f-repro.",
        epilog=epilog(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{validate,ls,reproduce,check,report,pin,train}")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog(prog, name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "--registry", default=str(DEFAULT_REGISTRY), help="registry YAML (default: %(default)s)"
        )
        p.set_defaults(func=func)
        return p

    def rows_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--rows",
            nargs="+",
            action="extend",
            metavar="PATTERN",
            help="fnmatch patterns on row ids, experiment keys or claim ids, e.g. 'table4.*' 'fig1.*'",
        )

    p = add("validate", cmd_validate, "validate the registry (fields, names, numbers, notebooks)")
    p.add_argument("--no-notebooks", action="store_true", help="skip the notebook existence/parameter checks")
    p.add_argument("--profile", choices=("paper",), help="paper: also list each row's downloads, updates, epochs, "
                   "GPU-hours, and fail on a row that cannot run as registered (r3f_utils/describe.py)")
    p = add("ls", cmd_ls, "list registry rows")
    rows_arg(p)
    p.add_argument("--role", choices=("target", "reported", "claim"),
                   help="only rows of this role (target: reproduced here; reported: quoted from another paper), "
                   "or only claims")
    p = add("reproduce", cmd_reproduce, "run rows' notebooks with papermill, then check them")
    rows_arg(p)
    p.add_argument("--profile", choices=PROFILES, help="default: smoke (with --resume: the batch's profile)")
    p.add_argument("--strict", action="store_true", help="exit 1 also when a row or claim is missing (CI)")
    p.add_argument(
        "--seeds", type=int, help="run seeds 1..N (default: 1 for smoke, the aggregation's for paper)"
    )
    p.add_argument("--out", default="runs", help="parent of the timestamped batch folder (default: runs)")
    p.add_argument(
        "--resume", metavar="DIR", help="continue batch DIR: skip finished seeds, rerun failed ones"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a notebook parameter")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (rows, runs, seeds, estimated GPU-hours) and exit without running anything")
    add_launcher_arguments(p)
    for name, func, text in (
        ("check", cmd_check, "compare results with the registry"),
        ("report", cmd_report, "write report.md and report.html"),
    ):
        p = add(name, func, text)
        p.add_argument("--results", required=True, metavar="DIR", help="folder searched for results.json")
        p.add_argument("--profile", choices=PROFILES,
                       help="default: the profile the batch ran (its batch.json), else the one the results hold")
        rows_arg(p)
        p.add_argument("--all-rows", action="store_true",
                       help="every registry row and claim, not only those of the batch's experiments")
        if name == "check":
            p.add_argument("--strict", action="store_true", help="exit 1 also when a row or claim is missing (CI)")
            p.add_argument("--include-reported", action="store_true", help="also list reported rows")
        else:
            p.add_argument("--out", metavar="DIR", help="output folder (default: the results folder)")
            p.add_argument("--format", choices=("html", "model-index"), default="html",
                           help="html: report.md + report.html (default); model-index: model-index.yaml/.json, "
                           "the reproduced values as a Hugging Face model card's model-index")
    p = add("pin", cmd_pin, "pin the smoke values of a batch as the rows' smoke.expected (edits the registry)")
    p.add_argument("--results", required=True, metavar="DIR", help="folder searched for smoke results.json")
    rows_arg(p)
    p.add_argument("--decimals", type=int, default=4, help="decimals kept (default: %(default)s)")
    p = add("train", cmd_train, "train one experiment as a script (torchrun / accelerate launch ready)")
    add_train_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C outside a batch's runs (reproduce says how to resume its own)
        print("\ninterrupted", file=sys.stderr)
        return 130
