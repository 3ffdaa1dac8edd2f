"""What ``check`` and ``report`` look at by default: the profile and the experiments the batch ran.

A batch folder holds ``batch.json`` (:func:`r3f_utils.runner.write_batch_manifest`). ``--results`` naming a
batch folder takes its profile and experiments; naming a folder of batches (``runs/``) takes the union of the
manifests one level below it (they must agree on the profile to give a default); a batch folder among them
without its ``batch.json`` is refused then (its runs would silently fall out of that scope). Results without
any manifest (notebooks run by hand, results copied from a cluster, ``train``): the profile is the one the
results hold, and every registry row is in scope. ``--rows`` narrows, ``--all-rows`` widens to the whole registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .layout import run_dirs
from .registry import Claim, Registry, RegistryRow
from .results import ResultRecord
from .runner import BatchManifest, RunnerError, missing_manifest, read_batch_manifest

__all__ = ["BatchScope", "batch_scope", "resolve_profile", "rows_of_experiments"]

_FIX = ("check and report take their default profile and rows from the batches' manifests: re-run `reproduce` "
        "for its rows, point --results at one batch folder, or say what to look at with --profile and --rows "
        "(or --all-rows)")


@dataclass(frozen=True)
class BatchScope:
    """The manifests found under a results folder: their profile (None when they disagree) and experiments."""

    profile: str | None
    experiments: tuple[str, ...]
    manifests: int


def batch_scope(results: str | Path) -> BatchScope | None:
    """The scope of the batch (or the batches one level below) at ``results``; None without a manifest.
    RunnerError for a batch folder without its ``batch.json`` beside batches with one."""
    root = Path(results)
    if not root.is_dir():
        return None
    manifests: list[BatchManifest] = []
    own = read_batch_manifest(root)
    if own is not None:
        manifests.append(own)
    else:
        unrecorded = []
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            manifest = read_batch_manifest(child)
            if manifest is not None:
                manifests.append(manifest)
            elif next(run_dirs(child), None) is not None:
                unrecorded.append(child)
        if manifests and unrecorded:  # the manifests' scope would silently leave that batch's runs out
            raise RunnerError(missing_manifest(unrecorded[0], _FIX))
    if not manifests:
        return None
    profiles = {m.profile for m in manifests}
    experiments = tuple(dict.fromkeys(e for m in manifests for e in m.experiments))
    return BatchScope(profiles.pop() if len(profiles) == 1 else None, experiments, len(manifests))


def resolve_profile(requested: str | None, scope: BatchScope | None, records: Sequence[ResultRecord],
                    where: str) -> str:
    """``--profile`` if given, else the batch's, else the one profile the results hold (RunnerError otherwise)."""
    if requested:
        return requested
    if scope is not None and scope.profile is not None:
        return scope.profile
    found = sorted({r.profile for r in records})
    if len(found) == 1:
        return found[0]
    if not found:
        raise RunnerError(f"no results.json under {where}: nothing to check or report")
    raise RunnerError(f"the results under {where} hold profiles {', '.join(found)}: pass --profile")


def rows_of_experiments(registry: Registry, experiments: Sequence[str]) -> tuple[list[RegistryRow], list[Claim]]:
    """The rows feeding ``experiments`` and the claims that read only these experiments."""
    wanted = set(experiments)
    rows = [r for r in registry.rows if r.experiment in wanted]
    claims = [c for c in registry.claims if set(c.experiments) <= wanted]
    return rows, claims
