"""Training-step time of standard, R3F, R4F, SMART and FreeLB for the same model and batch, side by side.

    python benchmarks/step_time.py                       # pip-shipped MiniLM, batch 16, length 64
    python benchmarks/step_time.py --model tiny-roberta --steps 20
    python benchmarks/step_time.py --adv-steps 2         # SMART/FreeLB with S = 2 ascent steps

Each step is one ``Trainer.training_step`` of the method's own trainer (the code training runs: forward
passes, backward passes, FreeLB's 1 + K backward calls) followed by a fused AdamW step. The variants are
interleaved step by step, so drift in machine load hits all of them alike; the median of ``--steps`` timed
steps after ``--warmup`` untimed ones is reported with the ratio to standard, SMART/R3F and FreeLB/R3F, and
the R3F step against its floor: one forward + backward of the doubled batch (2B) plus an optimiser step.
The 1-minute load average is printed before and after (the machine may be shared).
Paper, Table 1 in forward-pass units: standard 3, R3F/R4F 4, SMART(S) and FreeLB(S) 3 + 3S.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import TrainingArguments

from r3f_utils import FreeLBConfig, FreeLBTrainer, R3FConfig, R3FTrainer, SMARTConfig, SMARTTrainer, apply_r4f
from r3f_utils.models import load_model_and_tokenizer


def _args(out: str) -> TrainingArguments:
    return TrainingArguments(out, report_to=[], use_cpu=not torch.cuda.is_available(), disable_tqdm=True)


def _step(trainer: object, batch: dict[str, torch.Tensor], fused: bool) -> Callable[[], None]:
    """One training step of ``trainer`` on ``batch`` with its own AdamW (fused: the Trainer's default)."""
    model = trainer.model  # type: ignore[attr-defined]
    trainer.current_gradient_accumulation_steps = 1  # type: ignore[attr-defined]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=fused)

    def run() -> None:
        trainer.training_step(model, dict(batch))  # type: ignore[attr-defined]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="minilm (default), tiny-roberta, or a local/Hub model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (>= 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--adv-steps", type=int, default=1, help="S: SMART ascent steps and FreeLB adv-steps")
    parser.add_argument("--fused-adamw", action=argparse.BooleanOptionalAction, default=True,
                        help="fused AdamW, the Trainer's default optimizer (--no-fused-adamw: foreach AdamW)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, _ = load_model_and_tokenizer(opts.model, head="classification", num_labels=2)
    model.to(device).train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(5, vocab, (opts.batch_size, opts.length), generator=g).to(device),
        "attention_mask": torch.ones(opts.batch_size, opts.length, dtype=torch.long, device=device),
        "labels": torch.randint(0, 2, (opts.batch_size,), generator=g).to(device),
    }
    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}
    out = tempfile.mkdtemp()
    r4f_model = copy.deepcopy(model)
    apply_r4f(r4f_model)
    s = opts.adv_steps
    fused = opts.fused_adamw
    variants = {
        "standard": _step(R3FTrainer(model=copy.deepcopy(model), args=_args(out), r3f=None), batch, fused),
        "r3f": _step(R3FTrainer(model=copy.deepcopy(model), args=_args(out), r3f=R3FConfig()), batch, fused),
        "r3f (doubled batch)": _step(R3FTrainer(model=copy.deepcopy(model), args=_args(out),
                                                r3f=R3FConfig(pass_mode="concat")), batch, fused),
        "r4f": _step(R3FTrainer(model=r4f_model, args=_args(out), r3f=R3FConfig()), batch, fused),
        f"smart (S={s})": _step(SMARTTrainer(model=copy.deepcopy(model), args=_args(out),
                                             smart=SMARTConfig(ascent_steps=s)), batch, fused),
        f"freelb (S={s})": _step(FreeLBTrainer(model=copy.deepcopy(model), args=_args(out),
                                               freelb=FreeLBConfig(adv_steps=s)), batch, fused),
        "floor: 2B fwd+bwd+opt": _step(R3FTrainer(model=copy.deepcopy(model), args=_args(out), r3f=None),
                                       doubled, fused),
    }
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in range(opts.warmup + opts.steps):
        for name, run in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= opts.warmup:
                times[name].append(time.perf_counter() - start)
        print(f"step {step + 1}/{opts.warmup + opts.steps}", end="\r", flush=True)
    load_after = os.getloadavg()[0]
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["standard"]
    print(f"\nmodel={opts.model} batch={opts.batch_size} length={opts.length} device={device} "
          f"threads={torch.get_num_threads()} fused_adamw={fused} timed steps={opts.steps} (median) "
          f"load average (1 min) before/after: {load_before:.2f}/{load_after:.2f} on {os.cpu_count()} CPUs")
    print(f"{'variant':<24}{'median s/step':>15}{'vs standard':>13}")
    for name, value in median.items():
        print(f"{name:<24}{value:>15.3f}{value / base:>12.2f}x")
    r3f = median["r3f"]
    print(f"SMART(S={s}) / R3F:  {median[f'smart (S={s})'] / r3f:.2f}x   (Table 1, xFP: {(3 + 3 * s) / 4:.2f})")
    print(f"FreeLB(S={s}) / R3F: {median[f'freelb (S={s})'] / r3f:.2f}x   (Table 1, xFP: {(3 + 3 * s) / 4:.2f})")
    print(f"R3F / floor (2B fwd+bwd+opt): {r3f / median['floor: 2B fwd+bwd+opt']:.3f}x")


if __name__ == "__main__":
    main()
