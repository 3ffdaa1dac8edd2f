"""Dump, for every target row and profile, the parameters a run gets: what the runner passes to the notebook
(``plan_jobs``' ``Job.parameters``) and the values the notebook then runs with (its class defaults overlaid).

The safety net for changes to where defaults live (registry templates, profile defaults in code): dump before,
change, dump after, compare; the effective values must be identical.

    python benchmarks/dump_resolved_parameters.py --out before.json
    python benchmarks/dump_resolved_parameters.py --out after.json
    python benchmarks/dump_resolved_parameters.py --compare before.json after.json [--rename old=new ...]

``--compare`` exits 1 when an effective value differs (after renaming ``old`` keys of the first file to
``new``), and lists the keys that moved between "passed" and "notebook default" without changing value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from r3f_utils.families import notebook_defaults
from r3f_utils.registry import COMMON_PARAMETERS, DEFAULT_REGISTRY, PROFILES, load_registry
from r3f_utils.runner import plan_jobs


def dump(registry: str | Path = DEFAULT_REGISTRY) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{profile: {row: {"passed": {...}, "effective": {...}}}}`` for every target row of ``registry``."""
    rows = load_registry(registry, check_notebooks=False)
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for profile in PROFILES:
        out[profile] = {}
        for row in rows:
            jobs = plan_jobs([row], registry, profile=profile, seeds=1)
            if not jobs:
                continue
            passed = dict(jobs[0].parameters)
            defaults = notebook_defaults(jobs[0].notebook)
            effective = {k: v for k, v in {**defaults, **passed}.items() if k not in COMMON_PARAMETERS}
            out[profile][row.id] = {"passed": passed, "effective": effective}
    return out


def _renamed(d: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    return {renames.get(k, k): v for k, v in d.items()}


def compare(before: dict, after: dict, renames: dict[str, str]) -> list[str]:
    """Differences of the effective values (``before``'s keys renamed); [] when identical."""
    problems: list[str] = []
    for profile in sorted(set(before) | set(after)):
        b, a = before.get(profile, {}), after.get(profile, {})
        for row in sorted(set(b) | set(a)):
            if row not in a or row not in b:
                problems.append(f"{profile} {row}: only in the {'first' if row in b else 'second'} dump")
                continue
            eb, ea = _renamed(b[row]["effective"], renames), a[row]["effective"]
            for key in sorted(set(eb) | set(ea)):
                if eb.get(key, "<absent>") != ea.get(key, "<absent>"):
                    problems.append(f"{profile} {row}: {key} {eb.get(key, '<absent>')!r} -> "
                                    f"{ea.get(key, '<absent>')!r}")
    return problems


def moved_to_defaults(before: dict, after: dict, renames: dict[str, str]) -> dict[str, int]:
    """Per profile, how many (row, key) pairs were passed before and are now the notebook's default (or back)."""
    counts: dict[str, int] = {}
    for profile, rows in before.items():
        n = 0
        for row, entry in rows.items():
            pb = set(_renamed(entry["passed"], renames))
            pa = set(after.get(profile, {}).get(row, {}).get("passed", {}))
            n += len(pb ^ pa)
        counts[profile] = n
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    parser.add_argument("--out", help="write the dump here (JSON)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="a parameter renamed between the dumps")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.compare)
        renames = dict(r.split("=", 1) for r in args.rename)
        problems = compare(before, after, renames)
        n = sum(len(rows) for rows in after.values())
        for line in problems:
            print(line)
        moved = moved_to_defaults(before, after, renames)
        print(f"{n} (profile, row) pairs compared; effective values: "
              f"{'IDENTICAL' if not problems else f'{len(problems)} differences'}; "
              f"keys passed explicitly vs left to the notebook default changed: {moved}")
        return 1 if problems else 0
    data = dump(args.registry)
    text = json.dumps(data, indent=1, sort_keys=True, default=str)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}: " + ", ".join(f"{p} {len(r)} rows" for p, r in data.items()))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
