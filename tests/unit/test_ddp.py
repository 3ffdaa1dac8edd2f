"""R3F, SMART and FreeLB under DDP are the objective of one device with the whole batch: 2 gloo ranks x B/2 vs
1 process x B.

ONE torchrun launch (2 CPU processes, gloo) runs every check (torch/transformers imports are the cost): one SGD
step for R3F classification, R3F seq2seq, SMART (with the Bregman term), FreeLB and both standard paths, the
noise each rank draws (R3F, SMART, FreeLB), and the
``python -m r3f_utils train`` entry under DDP. The 1-process references run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _ddp_cases import CASES, one_sgd_step, patch_deterministic

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_ddp_worker.py")
TOL = 1e-5


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(out)]
    proc = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_step_equals_one_process_with_the_whole_batch(ddp_run, case, tmp_path, monkeypatch) -> None:
    patch_deterministic(monkeypatch.setattr)
    reference = one_sgd_step(case, tmp_path, per_device_batch=8)
    ddp = torch.load(ddp_run / f"{case}.pt")
    assert set(ddp) == set(reference)
    assert max(v.abs().max().item() for v in reference.values()) > 1e-3  # the step moved the parameters
    worst = max((ddp[k] - reference[k]).abs().max().item() for k in reference)
    assert worst < TOL, f"{case}: 2 ranks x 4 differ from 1 process x 8 by {worst:.2e}"


@pytest.mark.parametrize("case", ["classification_r3f", "classification_smart", "classification_freelb"])
def test_each_rank_draws_its_own_noise(ddp_run, case) -> None:
    name = "noise-rank{}.pt" if case == "classification_r3f" else f"noise-{case}-rank{{}}.pt"
    ranks = [torch.load(ddp_run / name.format(r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 1  # one draw (noised pass, SMART noise init, FreeLB delta_0)
    first, second = ranks[0][0], ranks[1][0]
    assert first.shape == second.shape and first.abs().max() > 0
    assert not torch.allclose(first, second), "both ranks drew the same noise (same RNG stream on every rank)"


def test_train_entry_runs_under_torchrun(ddp_run) -> None:
    run = ddp_run / "train-glue"
    results = json.loads((run / "results.json").read_text())
    assert results["extra"]["launch"]["num_processes"] == 2
    assert results["extra"]["train"]["global_step"] == 4
    assert set(results["metrics"]) == {"accuracy"}
    assert not (run / "checkpoints").exists()  # rank 0 removed them after every rank finished


def test_seq2seq_kl_over_the_step_sums_to_the_whole_batch_loss() -> None:
    from r3f_utils.methods.r3f import r3f_seq2seq_loss

    g = torch.Generator().manual_seed(0)
    clean, noised = torch.randn(4, 5, 7, generator=g), torch.randn(4, 5, 7, generator=g)
    labels = torch.randint(0, 7, (4, 5), generator=g)
    labels[:2, 1:] = -100  # two short targets, two long ones: tokens per sequence differ between the halves
    kw = {"r3f_lambda": 1.0, "label_smoothing": 0.1}
    whole = r3f_seq2seq_loss(clean, noised, labels, **kw).loss
    tokens, halves = labels.ne(-100).sum(), (slice(0, 2), slice(2, 4))
    step = sum(r3f_seq2seq_loss(clean[h], noised[h], labels[h], num_items=tokens, num_sequences=4, **kw).loss
               for h in halves)
    micro = sum(r3f_seq2seq_loss(clean[h], noised[h], labels[h], num_items=tokens, **kw).loss for h in halves)
    assert step == pytest.approx(whole.item(), rel=1e-6)  # seq2seq_kl_batch="step": one device, whole batch
    assert abs(micro - whole).item() > 1e-3  # "micro_batch" (fairseq under --update-freq / DDP) differs here
