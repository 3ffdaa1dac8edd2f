"""Training-step time of standard, R3F, R4F, SMART and FreeLB for the same model and batch, side by side.

    python benchmarks/step_time.py                       # pip-shipped MiniLM, batch 16, length 64
    python benchmarks/step_time.py --model tiny-roberta --steps 20
    python benchmarks/step_time.py --ascent-steps 2      # SMART/FreeLB with S = 2 ascent steps
    python benchmarks/step_time.py --causal-lm           # SFT of a tiny Llama (LoRA): R3F vs standard and NEFTune
    python benchmarks/step_time.py --causal-lm --model qwen2.5-0.5b --lora --bf16 --batch-size 8 --length 512  # GPU

Each step is one ``Trainer.training_step`` of the method's own trainer (the code training runs: forward
passes, backward passes, FreeLB's 1 + K backward calls) followed by a fused AdamW step. The variants are
interleaved step by step, so drift in machine load hits all of them alike; the median of ``--steps`` timed
steps after ``--warmup`` untimed ones is reported with the ratio to standard, SMART/R3F and FreeLB/R3F, and
the R3F step against its floor: one forward + backward of the doubled batch (2B) plus an optimiser step.
The 1-minute load average is printed before and after (the machine may be shared).
Paper, Table 1 in forward-pass units: standard 3, R3F/R4F 4, SMART(S) and FreeLB(S) 3 + 3S.

``--causal-lm`` (beyond the paper): one ``R3FSFTTrainer`` (TRL's ``SFTTrainer``) step of a decoder-only LM on
prompt + completion batches (the first half of each sequence is prompt: no loss), for standard SFT (TRL's fused
LM head), transformers' plain causal-LM loss (full logits), NEFTune (alpha 5), R3F (uniform noise) and R3F with
NEFTune's noise; median step time and, on a GPU, the step's peak memory above what was allocated before it, each
as a ratio to standard and to NEFTune. ``--model``: ``tiny-llama`` (default here), ``qwen2.5-0.5b`` (Qwen2.5-0.5B's
published dimensions, random weights: no download; the speed and memory do not depend on the weights) or a local
folder / Hub id; ``--lora`` adds LoRA r=16 adapters on every linear layer.
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


QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, tie_word_embeddings=True,
                  rope_theta=1000000.0, rms_norm_eps=1e-6)  # Qwen/Qwen2.5-0.5B's config.json


def _causal_lm(name: str) -> torch.nn.Module:
    """A causal LM: tiny-llama, Qwen2.5-0.5B's architecture with random weights, or from_pretrained."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from r3f_utils.tiny_models import build_tiny_model

    if name == "tiny-llama":
        return build_tiny_model("tiny-llama", dropout=0.0)[0]
    if name == "qwen2.5-0.5b":
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(Qwen2Config(**QWEN25_05B))
    return AutoModelForCausalLM.from_pretrained(name)


def _neftune(model: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """Register transformers' NEFTune hook on the input embeddings (what the Trainer does in ``train()``)."""
    try:
        from transformers.integrations.neftune import neftune_post_forward_hook
    except ImportError:  # transformers < 5
        from transformers.trainer_utils import neftune_post_forward_hook
    embeddings = model.get_input_embeddings()
    embeddings.neftune_noise_alpha = alpha
    embeddings.register_forward_hook(neftune_post_forward_hook)
    return model


def causal_lm_main(opts: argparse.Namespace) -> None:
    """The ``--causal-lm`` case: R3F's SFT step against standard SFT and NEFTune, time and peak memory."""
    from transformers import Trainer
    from trl import SFTConfig

    from r3f_utils import R3FSFTTrainer
    from r3f_utils.tiny_models import build_tiny_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = _causal_lm(opts.model).to(device).train()
    tokenizer = build_tiny_model("tiny-llama")[1]  # SFTTrainer wants one; the batches are token ids already
    vocab = base.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (opts.batch_size, opts.length), generator=g)
    labels = ids.clone()
    labels[:, : opts.length // 2] = -100  # the prompt half carries no loss
    batch = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
             "labels": labels.to(device)}
    out = tempfile.mkdtemp()
    import datasets

    data = datasets.Dataset.from_dict({"input_ids": ids.tolist()})  # SFTTrainer requires one; steps use `batch`

    def model() -> torch.nn.Module:
        m = copy.deepcopy(base)
        if opts.lora:
            from peft import LoraConfig, get_peft_model

            m = get_peft_model(m, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
        return m

    def sft(m: torch.nn.Module, r3f: R3FConfig | None) -> object:
        args = SFTConfig(out, report_to=[], use_cpu=device.type == "cpu", disable_tqdm=True, bf16=False,
                         gradient_checkpointing=False)
        return R3FSFTTrainer(model=m, args=args, r3f=r3f, processing_class=tokenizer, train_dataset=data)

    variants = {
        "standard (TRL fused head)": _step(sft(model(), None), batch, opts.fused_adamw),
        "plain CE (full logits)": _step(Trainer(model=model(), args=_args(out)), batch, opts.fused_adamw),
        "neftune (alpha 5)": _step(sft(_neftune(model(), 5.0), None), batch, opts.fused_adamw),
        "r3f (uniform)": _step(sft(model(), R3FConfig()), batch, opts.fused_adamw),
        "r3f + neftune noise": _step(sft(model(), R3FConfig(noise_type="neftune", neftune_alpha=5.0)), batch,
                                     opts.fused_adamw),
    }
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.bf16)
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, float] = dict.fromkeys(variants, 0.0)
    load_before = os.getloadavg()[0]
    for step in range(opts.warmup + opts.steps):
        for name, run in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            start = time.perf_counter()
            with autocast:
                run()
            if device.type == "cuda":
                torch.cuda.synchronize()
                peaks[name] = max(peaks[name], (torch.cuda.max_memory_allocated() - before) / 2**30)
            if step >= opts.warmup:
                times[name].append(time.perf_counter() - start)
        print(f"step {step + 1}/{opts.warmup + opts.steps}", end="\r", flush=True)
    load_after = os.getloadavg()[0]
    median = {name: statistics.median(values) for name, values in times.items()}
    std, nef = "standard (TRL fused head)", "neftune (alpha 5)"
    print(f"\ncausal LM: model={opts.model} lora={opts.lora} bf16={opts.bf16} batch={opts.batch_size} "
          f"length={opts.length} (half prompt) vocab={vocab} device={device} threads={torch.get_num_threads()} "
          f"timed steps={opts.steps} (median); load average (1 min) before/after: {load_before:.2f}/{load_after:.2f}")
    memory = device.type == "cuda"
    print(f"{'variant':<28}{'s/step':>9}{'vs std':>8}{'vs neftune':>11}"
          + (f"{'peak GiB':>10}{'vs std':>8}{'vs neftune':>11}" if memory else "   peak memory: CUDA only"))
    for name in variants:
        line = f"{name:<28}{median[name]:>9.3f}{median[name] / median[std]:>7.2f}x{median[name] / median[nef]:>10.2f}x"
        if memory:
            line += f"{peaks[name]:>10.2f}{peaks[name] / peaks[std]:>7.2f}x{peaks[name] / peaks[nef]:>10.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="minilm (default), tiny-roberta, or a local/Hub model; with --causal-lm: tiny-llama "
                             "(default), qwen2.5-0.5b (architecture only) or a local/Hub causal LM")
    parser.add_argument("--causal-lm", action="store_true", help="the SFT case: R3F vs standard SFT and NEFTune")
    parser.add_argument("--lora", action="store_true", help="--causal-lm: LoRA r=16 on every linear layer")
    parser.add_argument("--bf16", action="store_true", help="--causal-lm: bf16 autocast")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (>= 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--ascent-steps", type=int, default=1,
                        help="S: the ascent steps of SMART and FreeLB (fairseq --adv-steps, mt-dnn adv_k)")
    parser.add_argument("--fused-adamw", action=argparse.BooleanOptionalAction, default=True,
                        help="fused AdamW, the Trainer's default optimizer (--no-fused-adamw: foreach AdamW)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.causal_lm:
        opts.model = opts.model or "tiny-llama"
        causal_lm_main(opts)
        return
    opts.model = opts.model or "minilm"
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
    s = opts.ascent_steps
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
                                               freelb=FreeLBConfig(ascent_steps=s)), batch, fused),
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
