"""A batch's console shows what matters (issue 19 C): no "KeyboardInterrupt caught in kernel." after a notebook
that finished fine, no pin_memory warning per DataLoader on CPU."""

from __future__ import annotations

import asyncio
from pathlib import Path

from r3f_utils.experiments.checkpoints import checkpointed_run_arguments
from r3f_utils.warm_kernel_manager import WarmKernelManager, WarmKernelProvisioner


def test_no_sigint_to_a_kernel_that_is_shutting_down(monkeypatch):
    """jupyter_client interrupts (SIGINT) every kernel before its shutdown request; a kernel busy with a message
    then logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." on the batch's console. (That the
    interrupt reaches the kernel through the provisioner: tests/unit/test_warm_kernel_manager.py.)"""
    import signal

    from jupyter_client.provisioning import LocalProvisioner

    delivered = []

    async def deliver(self, signum):
        delivered.append(signum)

    monkeypatch.setattr(LocalProvisioner, "send_signal", deliver)
    manager = WarmKernelManager()
    provisioner = WarmKernelProvisioner(kernel_id="k", parent=manager)
    manager.shutting_down = True
    asyncio.run(provisioner.send_signal(signal.SIGINT))
    asyncio.run(provisioner.send_signal(signal.SIGTERM))  # the shutdown's own signals still go through
    assert delivered == [signal.SIGTERM]
    manager.shutting_down = False
    asyncio.run(provisioner.send_signal(signal.SIGINT))  # an interrupt of a running kernel still goes through
    assert delivered == [signal.SIGTERM, signal.SIGINT]


def test_no_pinned_memory_without_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = checkpointed_run_arguments(Path("x"), eval_steps=5, seed=1, fp16=False, bf16=False, profile="smoke")
    assert args["dataloader_pin_memory"] is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    args = checkpointed_run_arguments(Path("x"), eval_steps=5, seed=1, fp16=False, bf16=False, profile="paper")
    assert args["dataloader_pin_memory"] is True


def test_ctrl_c_leftover_kernel_tasks_print_no_traceback(capsys) -> None:
    """After Ctrl-C, asyncio reports the nbclient cell tasks whose kernel died with the batch ("Task exception was
    never retrieved" + a DeadKernelError traceback); the batch's workers drop exactly those records."""
    import logging

    from nbclient.exceptions import DeadKernelError

    from r3f_utils.launchers import quiet_interrupted_kernel_tasks

    logger = logging.getLogger("asyncio")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        quiet_interrupted_kernel_tasks()
        quiet_interrupted_kernel_tasks()  # idempotent
        try:
            raise DeadKernelError("Kernel died")
        except DeadKernelError:
            logger.error("Task exception was never retrieved", exc_info=True)
        try:
            raise ValueError("a real bug")
        except ValueError:
            logger.error("Task exception was never retrieved", exc_info=True)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "DeadKernelError" not in err
    assert "ValueError: a real bug" in err  # other task errors still show
