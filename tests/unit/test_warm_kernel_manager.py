"""The runner's kernel manager (r3f_utils/warm_kernel_manager.py) uses jupyter_client's public extension points only
(a client class, a kernel provisioner), but relies on three behaviours of jupyter_client that its documentation does
not promise. This test starts and stops a real kernel and pins each, so that a jupyter_client upgrade that changes
one fails here, naming it, instead of slowing every batch or putting noise on its console:

1. ``KernelManager.start_kernel`` keeps a provisioner the manager already has (``_async_pre_start_kernel`` makes one
   only when there is none): ``WarmKernelManager.start_kernel`` hands each kernel a ``WarmKernelProvisioner``.
2. ``shutdown_kernel`` interrupts the kernel through the provisioner's ``send_signal(SIGINT)`` with the manager's
   ``shutting_down`` already set: the provisioner drops that SIGINT.
3. ``shutdown_kernel`` calls the provisioner's ``shutdown_requested`` before ``finish_shutdown`` waits (it asks the
   provisioner's ``get_shutdown_wait_time`` first): the provisioner waits there with short polls.
"""

from __future__ import annotations

import asyncio
import signal

from jupyter_client.provisioning import LocalProvisioner

from r3f_utils.runner import KERNEL_ARGUMENTS, KERNEL_MANAGER
from r3f_utils.warm_kernel_manager import KERNEL_LOG_ENV, WarmKernelClient, WarmKernelManager, WarmKernelProvisioner

MARKER = "written to the kernel process's stderr"


def test_kernel_lifecycle_runs_through_the_provisioners_public_hooks(tmp_path, monkeypatch) -> None:
    assert f"{WarmKernelManager.__module__}.{WarmKernelManager.__name__}" == KERNEL_MANAGER
    log = tmp_path / "kernel.log"
    monkeypatch.setenv(KERNEL_LOG_ENV, str(log))
    events: list[tuple] = []

    async def delivered(self, signum):  # what reaches the kernel process
        events.append(("delivered", signum))

    send_signal = WarmKernelProvisioner.send_signal

    async def requested(self, signum):
        events.append(("send_signal", signum, self.parent.shutting_down))
        await send_signal(self, signum)

    shutdown_requested = WarmKernelProvisioner.shutdown_requested

    async def on_shutdown_request(self, restart=False):
        await shutdown_requested(self, restart=restart)
        events.append(("shutdown_requested", "exited" if await self.poll() is not None else "running"))

    wait_time = WarmKernelProvisioner.get_shutdown_wait_time

    def on_finish_shutdown(self, recommended=5.0):
        events.append(("finish_shutdown",))
        return wait_time(self, recommended)

    monkeypatch.setattr(LocalProvisioner, "send_signal", delivered)
    monkeypatch.setattr(WarmKernelProvisioner, "send_signal", requested)
    monkeypatch.setattr(WarmKernelProvisioner, "shutdown_requested", on_shutdown_request)
    monkeypatch.setattr(WarmKernelProvisioner, "get_shutdown_wait_time", on_finish_shutdown)

    async def lifecycle() -> tuple[type, dict]:
        manager = WarmKernelManager(kernel_name="python3")
        await manager.start_kernel(extra_arguments=KERNEL_ARGUMENTS, cwd=str(tmp_path))
        provisioner = type(manager.provisioner)
        client = manager.client()
        assert isinstance(client, WarmKernelClient)  # jupyter_client still takes the client class
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=120)
            reply = await client.execute_interactive(f"import os; os.write(2, b{MARKER!r} + b'\\n')", timeout=120)
        finally:
            client.stop_channels()
        await manager.shutdown_kernel()
        return provisioner, reply["content"]

    provisioner, reply = asyncio.run(lifecycle())
    assert provisioner is WarmKernelProvisioner, (
        "jupyter_client replaced the provisioner WarmKernelManager.start_kernel set (KernelManager."
        "_async_pre_start_kernel no longer keeps an existing one): hand WarmKernelProvisioner over another way")
    assert reply["status"] == "ok", reply
    assert MARKER in log.read_text(), "the kernel process's stderr did not go to R3F_KERNEL_LOG (launch_kernel)"
    assert ("send_signal", signal.SIGINT, False) not in events, events
    assert ("delivered", signal.SIGINT) not in events, (
        f"a SIGINT reached a kernel that was shutting down: {events}; jupyter_client's shutdown_kernel no longer "
        "sets shutting_down before it interrupts through the provisioner's send_signal")
    names = [e[0] for e in events if e[0] != "delivered"]
    assert "shutdown_requested" in names and "finish_shutdown" in names, events
    assert names.index("shutdown_requested") < names.index("finish_shutdown"), (
        f"jupyter_client's shutdown_kernel now waits (finish_shutdown) before it tells the provisioner of the "
        f"shutdown request: WarmKernelProvisioner.shutdown_requested no longer shortens that wait ({events})")
    assert ("shutdown_requested", "exited") in events, (
        f"the kernel was still running when WarmKernelProvisioner.shutdown_requested returned: {events}")
