"""Execute notebooks/probing.ipynb with the parameters the runner gives `reproduce --rows 'fig3.r4f'` (smoke
profile, CPU, offline; in a warm kernel): one execution of the `generalization` study (Figure 3) for R4F.

Its results.json must hold the study's metrics with the values pinned in the registry, list its figures (which
must be PNG files beside it) and, because a finished run of another method already sits in the same batch,
also the figure that draws both methods. Time budget: one execution, ~8 s on an idle 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_runs import execute_all
from test_glue_notebooks import PIN_TOL

from r3f_utils.checker import check
from r3f_utils.registry import load_registry, select_rows
from r3f_utils.results import write_results
from r3f_utils.runner import plan_jobs, validate_jobs

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "results_registry.yaml"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, object]:
    batch = tmp_path_factory.mktemp("probing-batch")
    # a finished run of another method in the same batch (synthetic numbers): the notebook draws both
    other = {f"probe_{t}": 40.0 for t in ("mnli", "qqp", "rte", "qnli", "mrpc", "cola")}
    write_results(batch / "fig3.standard" / "seed-1", experiment="fig3.standard", profile="smoke", seed=1,
                  metrics={**other, "probe_mean": 40.0}, parameters={},
                  extra={"study": "generalization", "method": "standard"})
    rows = select_rows(load_registry(REGISTRY, check_notebooks=False), ["fig3.r4f"])
    (job,) = plan_jobs(rows, REGISTRY, profile="smoke")
    validate_jobs([job])
    params = {k: v for k, v in job.injected(batch).items() if k != "output_dir"}
    # it runs in <batch>/fig3.r4f/run: beside the other method's run, as a runner batch lays them out
    (record,) = execute_all(job.notebook, batch, {"fig3.r4f": params}).values()
    return batch, rows, record


@pytest.mark.notebooks
def test_probing_notebook_generalization_smoke(batch) -> None:
    _, rows, record = batch
    if isinstance(record, BaseException):
        raise record
    (row,) = rows
    assert record.extra["study"] == "generalization" and record.extra["method"] == "r4f"
    assert set(record.metrics) == set(row.metrics)
    for name, value in row.smoke.expected.items():
        assert record.metrics[name] == pytest.approx(value, abs=PIN_TOL), name
    stage = record.extra["stages"][0]
    assert stage["task"] == "sst2" and [p["task"] for p in stage["probes"].values()] == list(
        record.parameters["probe_tasks"])
    for probe in stage["probes"].values():  # issue 18: the probe learning rate chosen on held-out training data
        assert tuple(probe["selection"]["grid"]) == (1e-4, 1e-3, 1e-2)
        assert probe["learning_rate"] in probe["selection"]["grid"]
        assert probe["selection"]["learning_rate"] == probe["learning_rate"]
    assert record.extra["figures"] == ["probing_generalization.png", "probing_generalization_methods.png"]
    for name in record.extra["figures"]:
        assert (record.path.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(record.path.parent.glob("stages/*/encoder.safetensors"))  # cleaned up after results.json
    # the checker reads the run: figure metrics are measured and match the pinned smoke values
    result = check(rows, [record], "smoke")
    assert {v.verdict for v in result.verdicts} == {"reproduced"}
