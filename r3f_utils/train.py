"""``python -m r3f_utils train FAMILY``: one experiment as a script, ready for ``torchrun`` and ``accelerate launch``.

The parameters are the notebook's: the defaults are the family's parameter class's (:mod:`r3f_utils.families`,
:mod:`r3f_utils.params`; the notebook's ``parameters`` cell is stamped from it), then a registry row's
(``--row``, ``--profile``), a YAML/JSON file (``--params``) and ``--set KEY=VALUE`` override them in that order.
The run calls the family's ``run`` (the same :mod:`r3f_utils.experiments` steps as the notebook, cell for cell)
and writes the same ``results.json``.

Under ``torchrun --nproc_per_node N -m r3f_utils train ...`` or ``accelerate launch -m r3f_utils train ...`` every
process trains its share of each batch (the Trainer's DDP); rank 0 alone writes ``results.json`` and removes
the checkpoints. ``batch_size`` stays the per-device batch, as in the Trainer: the global batch is
``batch_size x N``; divide it by N to keep the paper's batch.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import yaml_io
from .constants import PROFILES
from .families import FAMILIES as _ALL_FAMILIES
from .families import Family

__all__ = ["FAMILIES", "TrainError", "resolve_parameters", "run_training"]

FAMILIES = tuple(name for name, f in _ALL_FAMILIES.items() if f.run is not None)  # the others: notebooks only


class TrainError(ValueError):
    """Parameters that cannot make a run (unknown family, unreadable parameter file, bad override)."""


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise TrainError(f"family must be one of {', '.join(FAMILIES)}, not {name!r}")
    return _ALL_FAMILIES[name]


def read_parameter_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of notebook parameters (JSON is YAML, so one reader serves both)."""
    try:
        data = yaml_io.load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml_io.YAMLError) as err:
        raise TrainError(f"--params {path}: {err}") from err
    if not isinstance(data, Mapping):
        raise TrainError(f"--params {path}: expected a mapping of parameter names to values, got {type(data).__name__}")
    return dict(data)


def resolve_parameters(
    family: str | None,
    *,
    row: str | None = None,
    profile: str = "smoke",
    registry: str | Path | None = None,
    params_file: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> tuple[str, dict[str, Any]]:
    """``(family, parameters)``: notebook defaults < registry row < parameter file < ``--set`` overrides."""
    from .params import spelling_problems
    from .registry import DEFAULT_REGISTRY, load_registry, select_rows
    from .runner import parse_override, plan_jobs

    params: dict[str, Any] = {}
    if row is not None:
        path = registry or DEFAULT_REGISTRY
        rows = [r for r in select_rows(load_registry(path, check_notebooks=False), [row]) if r.role == "target"]
        if not rows:
            raise TrainError(f"--row {row!r}: no target row or experiment of that name in {path}")
        job = plan_jobs(rows[:1], path, profile=profile, seeds=1)[0]
        row_family = job.notebook.stem
        if family is not None and family != row_family:
            raise TrainError(f"--row {row!r} runs notebooks/{row_family}.ipynb, not the {family} family")
        family = row_family
        params = {**job.parameters, "experiment": job.experiment, "profile": profile}
    if family is None:
        raise TrainError("name a family (" + ", ".join(FAMILIES) + ") or a registry row with --row")
    params = {**_family(family).defaults(), **params}
    if params_file is not None:
        params.update(read_parameter_file(params_file))
    params.update(parse_override(text) for text in overrides)
    old = spelling_problems(params)  # before torch loads: --set / --params with a schema-2 name
    if old:
        raise TrainError("; ".join(old))
    return family, params


def _process_group() -> tuple[int, int]:
    """``(rank, world size)``; under torchrun / accelerate launch, joins the process group first (NCCL on GPUs,
    gloo on CPUs; the Trainer then uses it as it is)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def run_training(family: str, params: Mapping[str, Any]) -> dict[str, float]:
    """Run one experiment in this process (one rank of it under torchrun / accelerate launch); return its metrics.

    Every rank agrees on the run folder (rank 0 picks it when ``output_dir`` is None); rank 0 writes
    ``results.json`` and then removes the checkpoints unless ``keep_checkpoints``.
    """
    import torch.distributed as dist

    from r3f_utils.experiments import checkpoints
    from r3f_utils.results import write_results

    started_at = datetime.now(timezone.utc)
    rank, world = _process_group()
    params = dict(params)
    if params.get("output_dir") is None:
        stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
        chosen = [f"runs/train/{family}-{params.get('method', 'run')}-{stamp}"]
        if world > 1:
            dist.broadcast_object_list(chosen, src=0)
        params["output_dir"] = chosen[0]
    cfg, metrics, extra = _family(family).load_run()(params)
    extra = {**extra, "launch": {"num_processes": world}}
    if rank == 0:
        write_results(cfg.output_dir, experiment=cfg.experiment, profile=cfg.profile, seed=cfg.seed, metrics=metrics,
                      parameters=cfg.to_dict(), started_at=started_at, extra=extra)
    if world > 1:
        dist.barrier()
    if rank == 0:
        checkpoints.remove_checkpoints(cfg.checkpoint_dir, keep=cfg.keep_checkpoints)
    return metrics


def add_arguments(parser: Any) -> None:
    """The ``train`` subcommand's arguments (``parser`` is an argparse parser)."""
    parser.add_argument("family", nargs="?", choices=FAMILIES, help="experiment family (default: --row's)")
    parser.add_argument("--row", help="take the parameters of this registry row or experiment (with --profile)")
    parser.add_argument("--profile", default="smoke", choices=PROFILES,
                        help="the row's profile (default: smoke)")
    parser.add_argument("--params", metavar="FILE", help="YAML or JSON file of notebook parameters")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")


def run_from_args(args: Any) -> int:
    """``python -m r3f_utils train``: resolve the parameters, train, print the metrics as one JSON line."""
    from .registry import RegistryError
    from .runner import RunnerError

    try:
        family, params = resolve_parameters(args.family, row=args.row, profile=args.profile,
                                            registry=args.registry, params_file=args.params, overrides=args.set)
    except (TrainError, RegistryError, RunnerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from .models import ModelNotAvailableError

    try:
        metrics = run_training(family, params)
    except ModelNotAvailableError as err:  # one line, not a traceback through the Trainer
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"family": family, "metrics": metrics}, sort_keys=True))
    return 0
