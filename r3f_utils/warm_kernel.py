"""Warm Jupyter kernels for ``reproduce``: each notebook still gets a fresh kernel process, forked from a
"zygote" that imported torch, transformers, datasets and r3f_utils once, so a smoke run stops paying ~6 CPU
seconds of imports (two thirds of its cost on 2 cores).

The zygote runs beside each launcher worker, started with the environment the runner gives its kernels (so
settings read at import time, like ``HF_HUB_OFFLINE``, are the kernels'). A kernelspec ``r3f-warm`` in a
private ``JUPYTER_PATH`` folder starts ``python -I -S <this file> -f {connection_file}``: a small stand-in
process (standard library only) that asks the zygote to fork an ``ipykernel`` for that connection file, forwards
SIGINT / SIGTERM to it and exits with it; the kernel exits when the stand-in is gone, and the stand-in kills the kernel
when the runner that started it dies (as a cold kernel's parent poller would). Nothing job-specific runs in the
zygote, and every notebook seeds its own RNGs, so results equal a cold kernel's (the smoke pins check it).
Without a zygote the stand-in simply becomes an ordinary ``ipykernel``.

Also done once in the zygote for every kernel: its imported objects are frozen out of garbage collection
(``gc.freeze``), ``matplotlib.pyplot`` and ipykernel's debugger are imported, and transformers' checkpoint
conversion table is built; each kernel points the zygote's logging handlers at its own ``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

KERNEL_NAME = "r3f-warm"
SOCKET_ENV = "R3F_WARM_KERNEL_SOCKET"
_INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# run by each forked kernel once its streams are the notebook's (an expression: it defines no name)
_KERNEL_STARTUP = "__import__('r3f_utils.warm_kernel', fromlist=['_']).rebind_log_streams()"
# What the zygote imports: every family's modules (r3f_utils.families.preload_modules; matplotlib.pyplot too:
# importing it does not load a backend, and MPLBACKEND is set the way ipykernel would set it before the kernel's
# first plot; see :func:`serve`). Read from the families' table in the zygote, never in the stand-in (which runs
# without site-packages).


def _preload() -> tuple[str, ...]:
    from r3f_utils.families import preload_modules

    return preload_modules()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _watch(pid: int) -> None:
    """In the kernel: exit when the stand-in process is gone (killed, or its kernel manager gave up)."""
    while _alive(pid):
        time.sleep(0.5)
    os._exit(1)


def _kernel_child(request: dict) -> None:
    """In the forked child: become an ipykernel for the requested connection file; never return."""
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it; the kernel's subprocesses need it
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log = request["env"].get("R3F_KERNEL_LOG")  # the stand-in's stderr, as a cold kernel's (warm_kernel_manager)
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
        os.environ["JPY_PARENT_PID"] = str(request["parent"])  # a managed kernel: no console banner
        # ipykernel read JPY_PARENT_PID when the zygote imported it: say it on the command line, or every kernel
        # prints its console banner ("Ctrl-C will not work", "To connect another client") into the batch's output
        sys.argv = ["ipykernel_launcher", *request["argv"], f"--IPKernelApp.parent_handle={request['parent']}",
                    f"--IPKernelApp.exec_lines={_KERNEL_STARTUP}"]
        sys.path[0] = request["cwd"]
        threading.Thread(target=_watch, args=(request["parent"],), daemon=True).start()
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0
    except BaseException:  # a kernel that cannot start must not fall back into the zygote's loop
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _build_lazy_tables() -> None:
    """Pure-Python tables transformers builds on first use, once here instead of once per kernel: the checkpoint
    conversion mapping (~1,000 regular expressions, ~0.16 s at a run's first save_pretrained, transformers 5).
    No tensor work happens in the zygote: an OpenMP pool started before fork() could hang the kernels."""
    try:
        from transformers import conversion_mapping
    except ImportError:  # another transformers version: nothing to build
        return
    build = getattr(conversion_mapping, "get_checkpoint_conversion_mapping", None)
    if build is not None:
        with contextlib.suppress(Exception):
            build("bert")


def rebind_log_streams() -> None:
    """In a kernel: point logging handlers created in the zygote (transformers' own, e.g.) at the kernel's
    ``sys.stderr``, so that their messages land in the notebook as in a cold kernel, not on the batch's console."""
    import logging

    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and handler.stream is sys.__stderr__:  # the zygote's
                handler.setStream(sys.stderr)


def serve(path: str, preload: Sequence[str] | None = None) -> None:
    """The zygote: import ``preload`` (default: every family's modules), then fork one kernel per request until
    the parent process exits."""
    import importlib

    parent = os.getppid()  # before the imports: the worker may die while they run
    # ipykernel sets this default before a kernel's first plot; matplotlib reads it when imported (here)
    os.environ.setdefault("MPLBACKEND", _INLINE_BACKEND)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # ipykernel.debugger: no frozen-modules notice
    for name in _preload() if preload is None else preload:
        importlib.import_module(name)
    _build_lazy_tables()
    # the imports left ~500k objects that every full garbage collection in a kernel would scan again (~0.25 s
    # each; the Trainer calls gc.collect() itself): move them to the permanent generation, out of the kernels' GC
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked kernels are reaped automatically
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    listener.settimeout(1.0)
    while os.getppid() == parent:  # the launcher worker that started us is alive
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            request = json.loads(conn.makefile("r").readline())
            pid = os.fork()
            if pid == 0:
                listener.close()
                _kernel_child(request)
            conn.sendall(f"{pid}\n".encode())
    import shutil

    shutil.rmtree(Path(path).parent, ignore_errors=True)  # the worker was killed: tidy its folder ourselves


def stand_in(argv: Sequence[str]) -> int:
    """The kernel command: have the zygote fork the kernel, relay signals to it, exit when it exits."""
    path = os.environ.get(SOCKET_ENV)
    if not path or not os.path.exists(path):  # no zygote: an ordinary kernel
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])
    request = {"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd(), "parent": os.getpid()}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall((json.dumps(request) + "\n").encode())
        pid = int(conn.makefile("r").readline())
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum) if _alive(pid) else None)
    manager = os.getppid()
    while _alive(pid):
        if os.getppid() != manager:  # the kernel manager (the runner) died, e.g. kill -9: the kernel goes too
            os.kill(pid, signal.SIGKILL)
            return 1
        time.sleep(0.02)  # the kernel manager waits for this process to end after each notebook
    return 0


@contextlib.contextmanager
def warm_kernels(preload: Sequence[str] | None = None, timeout_s: float = 300.0) -> Iterator[str]:
    """Start a zygote with this process's environment; yield the kernel name that uses it.

    Call it with the environment the kernels should have (the runner's ``_kernel_environment``); keep the
    block open while notebooks run with ``kernel_name`` = the yielded name.
    """
    with tempfile.TemporaryDirectory(prefix="r3f-warm-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        # the stand-in needs the standard library only: -I -S skips site-packages (~40 ms of each kernel's start)
        spec = {"argv": [sys.executable, "-I", "-S", str(Path(__file__).resolve()), "-f", "{connection_file}"],
                "display_name": "Python 3 (r3f warm)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        path = str(Path(tmp) / "zygote.sock")
        zygote = subprocess.Popen([sys.executable, "-m", "r3f_utils.warm_kernel", "--serve", path,
                                   ",".join(_preload() if preload is None else preload)])
        saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", SOCKET_ENV)}
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (tmp, saved["JUPYTER_PATH"]) if p)
        os.environ[SOCKET_ENV] = path
        try:
            deadline = time.monotonic() + timeout_s
            while not os.path.exists(path) and zygote.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            yield KERNEL_NAME
        finally:
            zygote.terminate()
            zygote.wait(timeout=30)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], [m for m in sys.argv[3].split(",") if m] if len(sys.argv) > 3 else None)
    else:
        raise SystemExit(stand_in(sys.argv[1:]))
