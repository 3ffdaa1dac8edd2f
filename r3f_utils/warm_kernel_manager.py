"""The kernel manager ``reproduce`` hands papermill for its warm kernels (:mod:`r3f_utils.warm_kernel`).

jupyter_client's own waits for 0.2 s of IOPub silence after every kernel start and polls a stopping kernel every
0.1 s: ~0.3 s of idle time per notebook, a tenth of a smoke run, when a warm kernel starts in ~0.15 s. This one
waits for the same things (a kernel_info reply, a connected IOPub channel, the process gone) with shorter polls;
nothing else changes. Messages the start leaves on IOPub answer no execute request of the notebook's, so nbclient
ignores them as it does after the longer flush. Written here because jupyter_client has no setting for either.
A kernel being shut down gets no SIGINT first (see :meth:`WarmKernelManager._async_interrupt_kernel`).
"""

from __future__ import annotations

import contextlib
import os
import time
from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = ["KERNEL_LOG_ENV", "WarmKernelClient", "WarmKernelManager"]

# the runner names a file here (the run folder's kernel.log): the kernel process's own stderr goes there, not onto
# the batch's console (a cell's output reaches the notebook through IOPub either way)
KERNEL_LOG_ENV = "R3F_KERNEL_LOG"


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
                    self._handle_kernel_info_reply(reply)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        with contextlib.suppress(Empty):  # drain what the start left on IOPub
            while True:
                await self.iopub_channel.get_msg(timeout=0.01)


class WarmKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` with :class:`WarmKernelClient` and a 10 ms poll while a kernel stops."""

    client_class = DottedObjectName(f"{__name__}.WarmKernelClient", config=True)
    client_factory = Type(klass=WarmKernelClient, config=True)

    async def _async_interrupt_kernel(self) -> None:
        """No SIGINT while shutting down: jupyter_client interrupts every kernel before its shutdown request, and a
        kernel that is handling a message then logs "KeyboardInterrupt caught in kernel." on the batch's console
        after a notebook that finished fine. The shutdown request alone stops it (then SIGTERM/SIGKILL as before)."""
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.01), restart)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw):  # type: ignore[override]
        log = os.environ.get(KERNEL_LOG_ENV)
        if not log or "stderr" in kw:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        with open(log, "ab") as stream:  # the kernel keeps its own copy of the descriptor
            return await super()._async_launch_kernel(kernel_cmd, stderr=stream, **kw)
