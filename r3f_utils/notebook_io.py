"""papermill saves the executed notebook with a plain ``open(path, "w").write(...)``: on a full disk that leaves a
truncated ``notebook.ipynb`` (invalid JSON) in the run folder. :func:`use_atomic_notebook_writes` makes
papermill's local-file handler write atomically instead (:func:`r3f_utils.atomic.atomic_write_text`: temporary
file, fsync, rename), so a run folder always holds the last complete save of its notebook, and a failed save
raises :class:`r3f_utils.atomic.OutputError` naming the file and the fix. Imports papermill (the runner's).
"""

from __future__ import annotations

import os

from papermill.iorw import LocalHandler, papermill_io
from papermill.utils import chdir

from .atomic import atomic_write_text

__all__ = ["AtomicLocalHandler", "use_atomic_notebook_writes"]


class AtomicLocalHandler(LocalHandler):
    """papermill's ``LocalHandler`` whose ``write`` is atomic (reading and the rest unchanged)."""

    def write(self, buf: str, path: str) -> None:
        with chdir(self._cwd):
            dirname = os.path.dirname(path)
            if dirname and not os.path.exists(dirname):
                raise FileNotFoundError(f"output folder {dirname} doesn't exist.")
            atomic_write_text(os.path.abspath(path), buf)


def use_atomic_notebook_writes() -> None:
    """Make papermill write local notebooks with :class:`AtomicLocalHandler` (this process; idempotent)."""
    handlers = papermill_io._handlers  # (scheme, handler) pairs; the last "local" one serves plain paths
    for i, (scheme, handler) in enumerate(handlers):
        if scheme == "local" and not isinstance(handler, AtomicLocalHandler):
            handlers[i] = ("local", AtomicLocalHandler())
    if not any(scheme == "local" for scheme, _ in handlers):
        papermill_io.register("local", AtomicLocalHandler())
