"""``python -m r3f_utils.migrate PATH...``: convert schema-1 ``results.json`` files to schema 2, in place.

Schema 2 (registry schema 3, docs/registry.md#migration-from-schema-2) keeps one key for the registry experiment
a run feeds, ``experiment``; schema 1 wrote the same key a second time as ``row``. The conversion drops ``row``
(its value becomes ``experiment`` where a file has no ``experiment``) and sets ``schema_version`` to 2; nothing else
changes. Each file is rewritten atomically; files already at schema 2 are left alone. Torch-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .atomic import atomic_write_text
from .layout import RESULTS_FILENAME
from .results import SCHEMA_VERSION, ResultsError, read_json_object

__all__ = ["main", "migrate_results"]


def migrate_results(path: str | Path) -> bool:
    """Convert one schema-1 ``results.json`` to schema 2; True when it was converted, False when it already was
    schema 2. ResultsError for anything else (unreadable, another version, two different experiment keys)."""
    path = Path(path)
    data = read_json_object(path)
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return False
    if version != 1:
        raise ResultsError(f"{path}: schema_version {version!r}: only schema 1 converts to {SCHEMA_VERSION}")
    row, experiment = data.get("row"), data.get("experiment")
    if row is not None and experiment is not None and row != experiment:
        raise ResultsError(f"{path}: `row` {row!r} and `experiment` {experiment!r} differ: keep the registry "
                           "experiment the run fed as `experiment`, delete `row`, and set schema_version to 2 by hand")
    if (experiment or row) is None:
        raise ResultsError(f"{path}: neither `row` nor `experiment`: not a results.json of this package")
    converted = {"schema_version": SCHEMA_VERSION, "experiment": experiment or row,
                 **{k: v for k, v in data.items() if k not in ("schema_version", "row", "experiment")}}
    atomic_write_text(path, json.dumps(converted, indent=2) + "\n")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Convert every ``results.json`` under the given files or folders; print what changed."""
    parser = argparse.ArgumentParser(prog="python -m r3f_utils.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="results.json files, or folders searched recursively")
    args = parser.parse_args(argv)
    converted = kept = 0
    try:
        for base in args.paths:
            if not base.exists():
                raise ResultsError(f"{base}: does not exist")
            for path in [base] if base.is_file() else sorted(base.rglob(RESULTS_FILENAME)):
                if migrate_results(path):
                    converted += 1
                    print(f"converted {path}")
                else:
                    kept += 1
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{converted} converted to schema {SCHEMA_VERSION}, {kept} already schema {SCHEMA_VERSION}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
