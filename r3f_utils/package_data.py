"""Where the registry, the notebooks and the smoke fixtures are: a checkout's own files, else the wheel's copies.

A source checkout (``pip install -e .`` or ``PYTHONPATH=<checkout>``) uses ``results_registry.yaml``,
``notebooks/`` and ``tests/fixtures/`` next to the package, so edits there take effect at once. A wheel ships
copies of them as package data under ``r3f_utils/_data/`` (``setup.py`` copies them at build time, same
layout as the checkout's top level, fixtures under ``_data/fixtures/``), found with ``importlib.resources``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_root", "fixtures_dir", "is_checkout", "notebooks_dir", "registry_path"]

REGISTRY_FILENAME = "results_registry.yaml"
_CHECKOUT = Path(__file__).resolve().parents[1]


def is_checkout() -> bool:
    """True when this package is imported from a source checkout (its registry and notebooks beside it)."""
    return (_CHECKOUT / REGISTRY_FILENAME).is_file() and (_CHECKOUT / "pyproject.toml").is_file()


def data_root() -> Path:
    """The folder holding ``results_registry.yaml`` and ``notebooks/`` (a checkout's top level, or the wheel's
    ``r3f_utils/_data``)."""
    if is_checkout():
        return _CHECKOUT
    return Path(str(resources.files("r3f_utils").joinpath("_data")))  # a wheel installs plain folders


def registry_path() -> Path:
    """The default ``results_registry.yaml``."""
    return data_root() / REGISTRY_FILENAME


def notebooks_dir() -> Path:
    """The folder of the experiment notebooks."""
    return data_root() / "notebooks"


def fixtures_dir(family: str) -> Path:
    """The smoke fixtures of ``family`` (``glue``, ``xnli``, ``summarization``); may not exist."""
    if is_checkout():
        return _CHECKOUT / "tests" / "fixtures" / family
    return data_root() / "fixtures" / family
