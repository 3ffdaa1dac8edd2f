"""Wall time of ``python -m r3f_utils reproduce`` (smoke profile, every target row) under launcher variants,
run one after another in this process, with the machine's load average beside each figure.

    python benchmarks/reproduce_time.py                                   # --jobs 2 cold vs --jobs 2 warm
    python benchmarks/reproduce_time.py --variant "--jobs 1 --cold-kernels" --variant "--jobs 2"
    python benchmarks/reproduce_time.py --rows 'table2?.rte.*'            # a subset

Each variant writes into a fresh temporary folder; the exit code says whether every row matched its pin.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

DEFAULT_VARIANTS = ("--jobs 2 --cold-kernels", "--jobs 2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", help="reproduce flags of one variant (repeatable)")
    parser.add_argument("--rows", nargs="+", help="row patterns (default: every target row)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MPLBACKEND": "Agg"}
    print(f"{os.cpu_count()} CPUs; variants run one after another")
    print(f"{'variant':<28} {'seconds':>8} {'exit':>5}  load average (1 min) before -> after")
    for variant in args.variant or DEFAULT_VARIANTS:
        with tempfile.TemporaryDirectory(prefix="r3f-bench-") as out:
            cmd = [sys.executable, "-m", "r3f_utils", "reproduce", "--out", out, *shlex.split(variant)]
            if args.rows:
                cmd += ["--rows", *args.rows]
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            print(f"{variant:<28} {seconds:8.1f} {proc.returncode:5d}  {load_before:.2f} -> {os.getloadavg()[0]:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
