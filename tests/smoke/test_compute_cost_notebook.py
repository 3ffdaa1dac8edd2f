"""Smoke tier: Table 1 rows through the real runner, notebook and checker (offline, CPU).

One execution per method (S = 1); the S = 2, 3 rows run the same notebook with another ``ascent_steps``, and
their counts are checked without a notebook in tests/unit/test_compute_cost.py.
"""

from __future__ import annotations

import pytest

from r3f_utils.cli import main

pytestmark = pytest.mark.notebooks

ROWS = ["table1.standard", "table1.r3f_r4f", "table1.smart", "table1.freelb"]


def test_reproduce_table1_smoke_passes_the_checker(tmp_path, capsys) -> None:
    code = main(["reproduce", "--rows", *ROWS, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = next(line for line in out.splitlines() if line.startswith("profile smoke:"))
    assert out.count("reproduced") >= 12 and "invalid" not in summary and summary.endswith("; 0 failed"), summary
