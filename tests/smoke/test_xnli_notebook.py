"""Execute notebooks/xnli.ipynb with papermill for every Table 3 method (smoke profile, CPU, offline).

Each run gets the registry's smoke parameters for its row; results.json must hold one test accuracy per
language plus their mean, R4F's head must be spectrally normalised, and the values pinned in the registry
must come out. Time budget: 3 executions, ~7 s each, two at a time (~15 s on an idle 2-core machine).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_glue_notebooks import (  # the sibling module (pytest puts tests/smoke on sys.path)
    PIN_TOL,
    ROOT,
    SIGMA_TOL,
    execute_all,
    registry_smoke_runs,
)

from r3f_utils.data.xnli import XNLI_LANGUAGES
from r3f_utils.experiments.xnli import XNLI_METHODS

NOTEBOOK = ROOT / "notebooks" / "xnli.ipynb"
SMOKE_LANGUAGES = list(XNLI_LANGUAGES)  # the fixtures cover all 15 (the notebook's default)


@pytest.fixture(scope="session")
def xnli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("xnli-notebook")
    registry = registry_smoke_runs("notebooks/xnli.ipynb")
    jobs = {m: registry.get(("xnli", m), ({"method": m, "seed": 1}, {}))[0] for m in XNLI_METHODS}

    return execute_all(NOTEBOOK, base, jobs)


@pytest.mark.notebooks
@pytest.mark.parametrize("method", XNLI_METHODS)
def test_xnli_notebook(xnli_runs: dict[str, Any], method: str) -> None:
    record = xnli_runs[method]
    if isinstance(record, BaseException):
        pytest.fail(f"xnli notebook ({method}) failed: {type(record).__name__}: {record}")
    per_language = {f"accuracy_{lang}" for lang in SMOKE_LANGUAGES}
    assert set(record.metrics) == per_language | {"accuracy_avg"}
    assert all(0.0 <= v <= 100.0 for v in record.metrics.values())
    mean = sum(record.metrics[k] for k in per_language) / len(per_language)
    assert record.metrics["accuracy_avg"] == pytest.approx(mean, abs=1e-9)
    assert record.parameters["languages"] == SMOKE_LANGUAGES and record.parameters["method"] == method
    assert record.extra["train"]["best_checkpoint"] is not None
    head = record.extra["head"]
    if method == "r4f":
        assert head["parametrized"] == ["classifier.out_proj"]
        assert head["spectral_norms"]["out_proj"] == pytest.approx(1.0, abs=SIGMA_TOL)
    else:
        assert head["parametrized"] == []
    _, pins = registry_smoke_runs("notebooks/xnli.ipynb").get(("xnli", method), ({}, {}))
    for row_id, expected in pins.items():
        for name, value in expected.items():
            assert record.metrics[name] == pytest.approx(value, abs=PIN_TOL), (row_id, name)
