"""Standard vs R3F training-step time for the same model and batch, measured side by side in one run.

    python benchmarks/step_time.py                       # pip-shipped MiniLM, batch 16, length 64
    python benchmarks/step_time.py --model tiny-roberta --steps 20

Each step is forward + backward + optimizer step, through the same Trainer ``compute_loss`` that training
uses. The variants are interleaved step by step (so drift in machine load hits all of them alike); the
median of ``--steps`` timed steps after ``--warmup`` untimed ones is reported, with the ratio to standard.
Paper, Table 1: R3F costs 2 forward + 1 backward pass, i.e. 4/3 of a standard step in forward-pass units.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import TrainingArguments

from r3f_utils import R3FConfig, R3FTrainer
from r3f_utils.models import load_model_and_tokenizer


def _trainer(model: torch.nn.Module, r3f: R3FConfig | None, out: str) -> R3FTrainer:
    args = TrainingArguments(out, report_to=[], use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
    return R3FTrainer(model=model, args=args, r3f=r3f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="minilm (default), tiny-roberta, or a local/Hub model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (>= 10)")
    parser.add_argument("--warmup", type=int, default=2)
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
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=opts.fused_adamw)
    out = tempfile.mkdtemp()
    variants = {
        "standard": _trainer(model, None, out),
        "r3f (separate passes)": _trainer(model, R3FConfig(pass_mode="separate"), out),
        "r3f (doubled batch)": _trainer(model, R3FConfig(pass_mode="concat"), out),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in range(opts.warmup + opts.steps):
        for name, trainer in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= opts.warmup:
                times[name].append(time.perf_counter() - start)
        print(f"step {step + 1}/{opts.warmup + opts.steps}", end="\r", flush=True)
    base = statistics.median(times["standard"])
    print(f"\nmodel={opts.model} batch={opts.batch_size} length={opts.length} device={device} "
          f"threads={torch.get_num_threads()} fused_adamw={opts.fused_adamw} timed steps={opts.steps} (median)")
    print(f"{'variant':<24}{'median s/step':>15}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median:>15.3f}{median / base:>7.2f}x")


if __name__ == "__main__":
    main()
