"""Smoke tier: Table 1 rows through the real runner, notebook and checker (offline, CPU)."""

from __future__ import annotations

import pytest

from r3f_utils.cli import main

pytestmark = pytest.mark.notebooks


def test_reproduce_table1_smoke_passes_the_checker(tmp_path, capsys) -> None:
    code = main(["reproduce", "--rows", "table1.*", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("reproduced") >= 6 and "0 invalid" in out
