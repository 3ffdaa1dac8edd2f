"""Atomic file writes: a file is either written completely or not at all, never left half-written.

Each write goes to a temporary file in the target's folder, is flushed to disk, then renamed over (or, with
``exclusive=True``, hard-linked to) the target. On any error (disk full, read-only folder) the temporary file
is removed and an :class:`OutputError` names the target, the cause and the fix. Only ``os`` calls are used, so
the fault-injection tests can make any of them fail.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

__all__ = ["OutputError", "atomic_write_bytes", "atomic_write_text", "describe_os_error"]


class OutputError(OSError):
    """A result, report or registry file that could not be written; the message names it and the fix."""


def describe_os_error(path: str | Path, err: OSError) -> str:
    """``<path>: cannot write (<cause>): <what to do>`` for an OSError."""
    cause = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space (or choose another output folder) and run again"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "the folder is read-only: choose a writable output folder"
    elif err.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "a file is in the way of the output folder: choose another path"
    else:
        fix = "check the output folder"
    return f"{path}: cannot write ({cause}): {fix}"


def atomic_write_bytes(path: str | Path, data: bytes, *, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically. ``exclusive``: fail with FileExistsError if ``path`` exists
    (also when it appears meanwhile). Raises :class:`OutputError` for any other OS error."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = -1
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if exclusive:
            try:
                os.link(tmp, target)  # fails if target exists: never overwrites
            except FileExistsError:
                raise
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if target.exists():  # file systems without hard links
                    raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
                os.replace(tmp, target)
        else:
            os.replace(tmp, target)
    except FileExistsError:
        raise
    except OSError as err:
        raise OutputError(describe_os_error(target, err)) from err
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return target


def atomic_write_text(path: str | Path, text: str, *, exclusive: bool = False) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"), exclusive=exclusive)
