"""One rank of the 2-process gloo run of tests/unit/test_ddp.py: ``torchrun --nproc_per_node 2 _ddp_worker.py OUT``.

Writes into OUT: the parameter change of one SGD step for every case of ``_ddp_cases.CASES`` (rank 0), the noise
each rank drew in one real R3F, SMART and FreeLB step, and a GLUE smoke run of ``r3f_utils.train`` under DDP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from _ddp_cases import CASES, one_sgd_step, patch_deterministic

import r3f_utils.methods.freelb
import r3f_utils.methods.noise
import r3f_utils.methods.smart
from r3f_utils.train import resolve_parameters, run_training

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
torch.set_num_threads(1)

real_noise = r3f_utils.methods.noise.sample_noise
real_smart_noise = r3f_utils.methods.smart.initial_noise
real_freelb_delta = r3f_utils.methods.freelb.freelb_initial_delta
patch_deterministic(setattr)  # the same noise for each example however the batch is split
for case in CASES:
    delta = one_sgd_step(case, out / f"rank{rank}", per_device_batch=4)
    if rank == 0:
        torch.save(delta, out / f"{case}.pt")

drawn: list[torch.Tensor] = []


def recording_noise(like, eps, noise_type, generator=None):
    noise = real_noise(like, eps, noise_type, generator)
    drawn.append(noise.detach().clone())
    return noise


r3f_utils.methods.noise.sample_noise = recording_noise  # the real sampler, recorded
one_sgd_step("classification_r3f", out / f"noise-rank{rank}", per_device_batch=4)
torch.save(drawn, out / f"noise-rank{rank}.pt")
r3f_utils.methods.noise.sample_noise = real_noise

for case, module, name, real in (("classification_smart", r3f_utils.methods.smart, "initial_noise", real_smart_noise),
                                 ("classification_freelb", r3f_utils.methods.freelb, "freelb_initial_delta",
                                  real_freelb_delta)):
    drawn = []

    def recording(*args, _real=real, drawn=drawn, **kwargs):
        value = _real(*args, **kwargs)
        drawn.append(value.detach().clone())
        return value

    setattr(module, name, recording)  # the real sampler, recorded
    one_sgd_step(case, out / f"noise-{case}-rank{rank}", per_device_batch=4)
    torch.save(drawn, out / f"noise-{case}-rank{rank}.pt")
    setattr(module, name, real)

family, params = resolve_parameters(
    "glue", overrides=["max_updates=4", "eval_steps=4", "max_train_samples=16", f"output_dir={out / 'train-glue'}"]
)
run_training(family, params)
