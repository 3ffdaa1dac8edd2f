"""Wall time of ``python -m r3f_utils reproduce`` (smoke profile, every target row) under launcher variants,
run one after another in this process, with the machine's load average beside each figure.

    python benchmarks/reproduce_time.py                                   # --jobs 2 cold vs --jobs 2 warm
    python benchmarks/reproduce_time.py --variant "--jobs 1 --cold-kernels" --variant "--jobs 2"
    python benchmarks/reproduce_time.py --rows 'table2?.rte.*'            # a subset

Each variant writes into a fresh temporary folder; the exit code says whether every row matched its pin. Beside
each figure: the sum of the notebooks' own seconds (papermill's durations), and a calibration taken before and
after it: the seconds of one fixed tiny fine-tuning (tiny-roberta, RTE fixtures, 120 updates, one process, one
thread; ~1.4 s on a quiet 2-core machine of this project). A shared machine can be 40% slower for minutes; a
wall time is comparable with another only at a similar calibration.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

DEFAULT_VARIANTS = ("--jobs 2 --cold-kernels", "--jobs 2")
CALIBRATION = """
import tempfile, time
import torch
torch.set_num_threads(1)
from r3f_utils.experiments import glue as exp
with tempfile.TemporaryDirectory() as out:
    cfg = exp.resolve_glue_config(task="rte", method="standard", model_name="tiny-roberta", learning_rate=1e-3,
                                  max_updates=120, batch_size=8, data_dir="fixtures", seed=1, profile="smoke",
                                  experiment="calibration", output_dir=out)
    data = exp.load_glue_data(cfg)
    model, tokenizer = exp.build_glue_model(cfg, data.task.num_labels, data.texts())
    trainer = exp.build_glue_trainer(cfg, model, tokenizer, data, exp.tokenize_glue(data, tokenizer, cfg))
    start = time.perf_counter()
    exp.train_with_resume(trainer, cfg)
    print(f"{time.perf_counter() - start:.2f}")
"""


def calibration(env: dict[str, str]) -> str:
    """Seconds of the fixed tiny fine-tuning (imports excluded), in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", CALIBRATION], env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True)
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else "?"


def notebook_seconds(batch_parent: str) -> float:
    """Sum of papermill's per-notebook durations in the batch."""
    total = 0.0
    for path in glob.glob(os.path.join(batch_parent, "*", "*", "seed-*", "notebook.ipynb")):
        with open(path, encoding="utf-8") as f:
            total += json.load(f)["metadata"].get("papermill", {}).get("duration") or 0.0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", help="reproduce flags of one variant (repeatable)")
    parser.add_argument("--rows", nargs="+", help="row patterns (default: every target row)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MPLBACKEND": "Agg"}
    print(f"{os.cpu_count()} CPUs; variants run one after another")
    print(f"{'variant':<28} {'seconds':>8} {'notebooks':>9} {'exit':>5}  calibration s before -> after, load")
    for variant in args.variant or DEFAULT_VARIANTS:
        with tempfile.TemporaryDirectory(prefix="r3f-bench-") as out:
            cmd = [sys.executable, "-m", "r3f_utils", "reproduce", "--out", out, *shlex.split(variant)]
            if args.rows:
                cmd += ["--rows", *args.rows]
            before, load_before = calibration(env), os.getloadavg()[0]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            print(f"{variant:<28} {seconds:8.1f} {notebook_seconds(out):9.1f} {proc.returncode:5d}  {before} -> "
                  f"{calibration(env)}, load {load_before:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
