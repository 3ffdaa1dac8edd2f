"""The notebooks' stamped cells: the Colab header (an "Open in Colab" badge and an install cell) and the
``parameters`` cell, each from one place.

``REPOSITORY`` is the one place that names the repository (a placeholder until the project is published: set it
and run ``python -m r3f_utils.colab``, which restamps every notebook under ``notebooks/`` and, in a checkout, the
URL's copies in ``README.md``, ``pyproject.toml`` (``[project.urls]``) and ``CITATION.cff``). A new notebook gets
its header the same way; ``tests/unit/test_colab.py`` fails for any notebook whose header is missing or stale,
``tests/reliability/test_reliability_install.py`` for a stale URL copy.

The install cell installs ``r3f-repro`` with the notebook's extras only when ``r3f_utils`` does not import
(Colab, a fresh kernel): in a checkout, a venv with the package, or a papermill run it does nothing. On Colab
the Trainer uses the GPU by itself; the cell reports which one and whether it supports bf16 (else fp16). The
extras are the notebook's family's (:mod:`r3f_utils.families`).

The ``parameters`` cell of a family's notebook is :func:`r3f_utils.params.parameters_source` of its parameter
class: names, defaults and help are written there once, and the drift test fails when a cell differs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "BRANCH",
    "REPOSITORY",
    "badge_source",
    "install_source",
    "stamp_notebook",
    "stamp_notebooks",
    "stamp_repository_urls",
]

# The repository, in one place. "<owner>" is a placeholder until the project is published (README: Install).
REPOSITORY = "https://github.com/<owner>/r3f-repro"
BRANCH = "main"
BADGE_TAG = "colab-badge"
INSTALL_TAG = "colab-install"
PARAMETERS_TAG = "parameters"


def _github_path() -> str:
    return REPOSITORY.removeprefix("https://github.com/")


def badge_source(notebook: str) -> str:
    """Markdown of the "Open in Colab" badge of ``notebooks/<notebook>``."""
    url = f"https://colab.research.google.com/github/{_github_path()}/blob/{BRANCH}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def install_source(extras: Sequence[str] = ()) -> str:
    """Code of the install cell: pip-installs the package (with ``extras``) only when it does not import."""
    spec = f"r3f-repro[{','.join(extras)}]" if extras else "r3f-repro"
    return f'''# Colab / a fresh kernel: install r3f-repro only when it does not import (here: nothing happens).
# Stamped by `python -m r3f_utils.colab` from r3f_utils/colab.py (REPOSITORY); edit there, not here.
import importlib.util
import subprocess
import sys

R3F_REQUIREMENT = "{spec} @ git+{REPOSITORY}@{BRANCH}"
if importlib.util.find_spec("r3f_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", R3F_REQUIREMENT], check=True)
if "google.colab" in sys.modules:
    import torch

    if torch.cuda.is_available():
        print(f"GPU: {{torch.cuda.get_device_name(0)}};", "bf16" if torch.cuda.is_bf16_supported() else "fp16",
              "mixed precision available (the paper profile's bf16/fp16 parameters)")
    else:
        print("no GPU: Runtime > Change runtime type > GPU for the paper profile")'''


def _is_header(cell: dict, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def stamp_notebook(path: str | Path) -> bool:
    """Put the badge first and the install cell right before the ``parameters`` cell (replacing older ones), and
    write a family's ``parameters`` cell from its parameter class; returns True when the file changed."""
    import nbformat

    from .families import family_of
    from .params import parameters_source

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    cells = [c for c in nb.cells if not (_is_header(c, BADGE_TAG) or _is_header(c, INSTALL_TAG))]
    badge = nbformat.v4.new_markdown_cell(badge_source(path.name), metadata={"tags": [BADGE_TAG]})
    family = family_of(path)
    install = nbformat.v4.new_code_cell(install_source(family.extras if family else ()),
                                        metadata={"tags": [INSTALL_TAG]})
    where = next((i for i, c in enumerate(cells) if _is_header(c, PARAMETERS_TAG)), 0)
    if family is not None and where < len(cells) and _is_header(cells[where], PARAMETERS_TAG):
        cells[where]["source"] = parameters_source(family.params)
    cells.insert(where, install)
    cells.insert(0, badge)
    if nb.nbformat_minor >= 5:  # stable ids: restamping an unchanged notebook changes nothing
        badge["id"], install["id"] = BADGE_TAG, INSTALL_TAG
    else:
        badge.pop("id", None)
        install.pop("id", None)
    nb.cells = cells
    after = nbformat.writes(nb)
    if after == before:
        return False
    path.write_text(after + ("" if after.endswith("\n") else "\n"), encoding="utf-8")
    return True


def stamp_notebooks(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """Stamp ``paths`` (default: every notebook under ``notebooks/``); returns those that changed."""
    from .package_data import notebooks_dir

    targets = [Path(p) for p in paths] if paths else sorted(notebooks_dir().glob("*.ipynb"))
    return [p for p in targets if stamp_notebook(p)]


# The repository URL's copies outside the notebooks: file (relative to a checkout's top level) -> patterns whose
# group 2 is the URL (whatever it was before: the placeholder or an earlier REPOSITORY)
_URL_COPIES: dict[str, tuple[re.Pattern[str], ...]] = {
    "README.md": (re.compile(r"(@ git\+)(https://[^\s\"'@]+?)(?=[\"'\s@])"),),
    "pyproject.toml": (re.compile(r'^((?:Homepage|Repository) = ")(https://[^"]+)(?=")', re.M),
                       re.compile(r'^(Issues = ")(https://[^"]+)(?=/issues")', re.M)),
    "CITATION.cff": (re.compile(r'^(repository-code: ")(https://[^"]+)(?=")', re.M),),
}


def stamp_repository_urls(root: str | Path | None = None) -> list[Path]:
    """Write ``REPOSITORY`` into the URL's copies in ``README.md``, ``pyproject.toml`` and ``CITATION.cff`` under
    ``root`` (default: this checkout; nothing in an installed wheel); returns the files that changed."""
    from .package_data import is_checkout

    if root is None:
        if not is_checkout():
            return []
        root = Path(__file__).resolve().parents[1]
    changed = []
    for name, patterns in _URL_COPIES.items():
        path = Path(root) / name
        if not path.is_file():
            continue
        before = path.read_text(encoding="utf-8")
        after = before
        for pattern in patterns:
            after = pattern.sub(lambda m: m.group(1) + REPOSITORY, after)
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    changed = stamp_notebooks(sys.argv[1:]) + ([] if sys.argv[1:] else stamp_repository_urls())
    print("\n".join(f"stamped {p}" for p in changed) or "all notebooks up to date")
