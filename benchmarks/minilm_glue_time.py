"""Time the GLUE notebook on a real pretrained model on CPU: pip-shipped MiniLM, standard vs R3F vs R4F.

    python benchmarks/minilm_glue_time.py                      # synthetic MNLI-length pairs, 1,000 examples
    python benchmarks/minilm_glue_time.py --data-dir ~/glue --task rte --train-examples 2490   # your GLUE files

Runs ``notebooks/glue.ipynb`` with papermill (``model_name="minilm"``, one epoch over ``--train-examples``)
once per method and prints, per method, the training wall time per 1,000 training examples (the Trainer's
``train_runtime``, which includes the end-of-epoch evaluation and checkpoint save) and the total notebook
time. Without ``--data-dir`` it writes GLUE-format files in the RTE layout whose pairs have about as many
tokens as MNLI's (~40 MiniLM tokens), from templates (the numbers are timings, not accuracies).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["the old man", "a young woman", "the children", "my best friend", "the new teacher", "a local doctor"]
VERBS = ["reads a long book", "plays football with friends", "cooks a large dinner", "drives an old car",
         "writes a letter to the bank", "sings a song on the radio", "paints the kitchen wall", "walks the dog"]
PLACES = ["in the park", "at home", "in the city centre", "near the river", "at school", "early in the morning"]


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)} ."


def write_synthetic(folder: Path, n_train: int, n_dev: int, seed: int = 0) -> Path:
    """RTE-layout files (sentence1, sentence2, label) with MNLI-like lengths: a 3-sentence premise."""
    rng = random.Random(seed)
    task_dir = folder / "rte"
    task_dir.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_dev)):
        rows = []
        for i in range(n):
            premise = [_sentence(rng) for _ in range(3)]
            label = rng.randrange(2)
            hypothesis = premise[rng.randrange(3)] if label == 0 else _sentence(rng)
            rows.append({"sentence1": " ".join(premise), "sentence2": hypothesis, "label": label, "idx": i})
        (task_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="folder with <task>/train.jsonl and the dev split(s); default: synthetic")
    parser.add_argument("--task", default="rte", help="GLUE task (default rte: the synthetic files' layout)")
    parser.add_argument("--methods", nargs="+", default=["standard", "r3f", "r4f"])
    parser.add_argument("--train-examples", type=int, default=1000)
    parser.add_argument("--dev-examples", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--out", default=None, help="folder for the executed notebooks (default: a temp folder)")
    args = parser.parse_args(argv)

    import papermill

    out = Path(args.out or tempfile.mkdtemp(prefix="minilm-glue-"))
    data_dir = Path(args.data_dir) if args.data_dir else write_synthetic(out / "data", args.train_examples,
                                                                          args.dev_examples)
    updates = math.ceil(args.train_examples / args.batch_size)  # one epoch
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    print(f"MiniLM (all-MiniLM-L6-v2), {args.task}, {updates} updates x batch {args.batch_size} "
          f"= {updates * args.batch_size} examples, max_length {args.max_length}, torch threads: "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}, cpus: {os.cpu_count()}", flush=True)
    rows = []
    for method in args.methods:
        run = out / method
        start = time.perf_counter()
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "glue.ipynb"), str(out / f"{method}.ipynb"), cwd=str(ROOT / "notebooks"),
            progress_bar=False,
            parameters={"experiment": f"minilm.{args.task}.{method}", "profile": "cpu", "seed": 1,
                        "output_dir": str(run), "task": args.task, "method": method, "model_name": "minilm",
                        "data_dir": str(data_dir),
                        "learning_rate": args.learning_rate, "max_updates": updates, "batch_size": args.batch_size,
                        "max_length": args.max_length, "max_train_samples": args.train_examples,
                        "max_eval_samples": args.dev_examples, "eval_steps": updates},
        )
        total = time.perf_counter() - start
        result = json.loads((run / "results.json").read_text())
        train = result["extra"]["train"]
        seen = result["parameters"]["total_updates"] * args.batch_size
        rows.append((method, train["train_runtime"] / seen * 1000, total, result["metrics"]))
        print(f"{method:9s} train {train['train_runtime']:7.1f} s = {rows[-1][1]:6.1f} s per 1,000 examples; "
              f"notebook {total:6.1f} s; dev {result['metrics']}", flush=True)
    base = rows[0][1]
    print("relative to", rows[0][0] + ":", ", ".join(f"{m} x{t / base:.2f}" for m, t, _, _ in rows))
    print("median s per 1,000 examples:", round(statistics.median(r[1] for r in rows), 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
