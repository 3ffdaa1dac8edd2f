"""The kernel manager ``reproduce`` hands papermill for its kernels, warm (:mod:`r3f_utils.warm_kernel`) or cold.

Built on jupyter_client's public extension points only (the manager's configurable ``client_class`` and a kernel
provisioner, jupyter_client >= 7's hook for how a kernel process is launched, signalled and stopped):

- :class:`WarmKernelClient`: ``wait_for_ready`` as jupyter_client's, draining IOPub for 10 ms instead of 200 ms at
  the end (jupyter_client has no setting for it). Messages the start leaves on IOPub answer no execute request of
  the notebook's, so nbclient ignores them as it does after the longer flush.
- :class:`WarmKernelProvisioner` (a ``LocalProvisioner``):
  - ``launch_kernel``: the kernel process's own stderr goes to the file named by ``R3F_KERNEL_LOG`` (the runner
    sets it to the run folder's kernel.log), not onto the batch's console; a cell's output reaches the notebook
    through IOPub either way;
  - ``send_signal``: no SIGINT to a kernel that is being shut down: jupyter_client interrupts every kernel before
    its shutdown request, and a kernel that is handling a message then logs "KeyboardInterrupt caught in kernel."
    on the batch's console after a notebook that finished fine. The shutdown request alone stops it (then
    SIGTERM/SIGKILL as before);
  - ``shutdown_requested``: waits for the kernel to exit with 10 ms polls (at most half the manager's
    ``shutdown_wait_time``), so that the manager's own wait, which polls every 100 ms, finds it gone at once.
  A warm kernel starts in ~0.15 s: the two waits cost ~0.3 s of idle time per notebook otherwise.
- :class:`WarmKernelManager` hands each kernel it starts a :class:`WarmKernelProvisioner` (jupyter_client keeps a
  provisioner the manager already has; tests/unit/test_warm_kernel_manager.py pins that and the order of the hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from queue import Empty
from typing import Any

from jupyter_client import protocol_version_info
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import DottedObjectName, Type

__all__ = ["KERNEL_LOG_ENV", "WarmKernelClient", "WarmKernelManager", "WarmKernelProvisioner"]

# the runner names a file here (the run folder's kernel.log): the kernel process's own stderr goes there, not onto
# the batch's console (a cell's output reaches the notebook through IOPub either way)
KERNEL_LOG_ENV = "R3F_KERNEL_LOG"
_POLL_S = 0.01


class WarmKernelClient(AsyncKernelClient):
    """``wait_for_ready`` as jupyter_client's, draining IOPub for 10 ms instead of 200 ms at the end."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                with contextlib.suppress(Empty):  # IOPub is connected once the reply's status arrives there
                    await self.iopub_channel.get_msg(timeout=0.2)
                    # the protocol adaptation jupyter_client does on this reply
                    major = int(reply["content"]["protocol_version"].split(".")[0])
                    if major != protocol_version_info[0]:
                        self.session.adapt_version = major
                    break
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        with contextlib.suppress(Empty):  # drain what the start left on IOPub
            while True:
                await self.iopub_channel.get_msg(timeout=0.01)


class WarmKernelProvisioner(LocalProvisioner):
    """A local kernel process whose stderr goes to ``R3F_KERNEL_LOG``, that gets no SIGINT while shutting down and
    whose exit after a shutdown request is noticed within 10 ms."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        log = os.environ.get(KERNEL_LOG_ENV)
        if not log or kwargs.get("stderr") is not None:
            return await super().launch_kernel(cmd, **kwargs)
        with open(log, "ab") as stream:  # the kernel keeps its own copy of the descriptor
            return await super().launch_kernel(cmd, **{**kwargs, "stderr": stream})

    async def send_signal(self, signum: int) -> None:
        if signum == signal.SIGINT and getattr(self.parent, "shutting_down", False):
            return  # the interrupt before a shutdown request: see the module's docstring
        await super().send_signal(signum)

    async def shutdown_requested(self, restart: bool = False) -> None:
        await super().shutdown_requested(restart=restart)
        deadline = time.monotonic() + max(getattr(self.parent, "shutdown_wait_time", 0.0), 0.0) / 2
        while await self.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)


class WarmKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` with :class:`WarmKernelClient` and :class:`WarmKernelProvisioner`."""

    client_class = DottedObjectName(f"{__name__}.WarmKernelClient", config=True)
    client_factory = Type(klass=WarmKernelClient, config=True)

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        if self.provisioner is None:  # (a restart keeps the one it has)
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
            self.provisioner = WarmKernelProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                     parent=self)
        await super().start_kernel(**kw)
