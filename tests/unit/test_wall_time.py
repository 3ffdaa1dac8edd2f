"""Figure 1 pieces without training: the clock callback (also across a resume), the metrics, the violin plot."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from r3f_utils.experiments import wall_time as wt
from r3f_utils.results import write_results


def _tick(clock: wt.WallTimeCallback, state: SimpleNamespace, seconds: float, monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(wt.time, "perf_counter", lambda: now[0])
    clock.on_step_begin(None, state, None)
    now[0] += seconds
    state.global_step += 1
    clock.on_step_end(None, state, None)


def test_clock_times_steps_only_and_survives_a_resume(tmp_path, monkeypatch) -> None:
    state = SimpleNamespace(global_step=0)
    clock = wt.WallTimeCallback(tmp_path)
    clock.on_train_begin(None, state, None)
    for _ in range(2):
        _tick(clock, state, 1.5, monkeypatch)
    clock.on_evaluate(None, state, None)
    clock.on_save(None, state, None)
    _tick(clock, state, 1.5, monkeypatch)  # lost with the crash: redone after the resume
    resumed = wt.WallTimeCallback(tmp_path)
    state = SimpleNamespace(global_step=2)
    resumed.on_train_begin(None, state, None)
    for _ in range(2):
        _tick(resumed, state, 0.5, monkeypatch)
    resumed.on_evaluate(None, state, None)
    assert resumed.at_eval == {2: 3.0, 4: 4.0}
    metrics = wt.wall_time_metrics(resumed, "out/checkpoints/checkpoint-2", steps_per_epoch=10)
    assert metrics == {"wall_time_to_best": 3.0, "seconds_per_epoch": pytest.approx(10.0)}  # 4 s / 4 steps x 10
    with pytest.raises(ValueError, match="has no timed evaluation"):
        wt.wall_time_metrics(resumed, "checkpoint-3", steps_per_epoch=10)
    with pytest.raises(ValueError, match="no training step was timed"):
        wt.wall_time_metrics(wt.WallTimeCallback(), "checkpoint-2", steps_per_epoch=10)


def test_violin_plot_of_a_batch(tmp_path) -> None:
    assert wt.plot_wall_time(tmp_path) is None  # no runs yet
    for method, base in (("r3f", 10.0), ("smart", 20.0)):
        for seed in (1, 2):
            write_results(tmp_path / f"fig1.sst2.{method}" / f"seed-{seed}", experiment=f"fig1.sst2.{method}",
                          profile="smoke", seed=seed, metrics={"wall_time_to_best": base + seed,
                                                               "seconds_per_epoch": base / 2},
                          parameters={"method": method})
    write_results(tmp_path / "table1.standard" / "seed-1", experiment="table1.standard", profile="smoke", seed=1,
                  metrics={"forward_passes": 1.0}, parameters={"method": "standard"})
    (tmp_path / "fig1.sst2.r4f" / "seed-1").mkdir(parents=True)  # a run still going: notebook, no results yet
    (tmp_path / "fig1.sst2.r4f" / "seed-1" / "notebook.ipynb").write_text("{}")
    values = wt.collect_wall_times(tmp_path)
    assert values["wall_time_to_best"] == {"r3f": [11.0, 12.0], "smart": [21.0, 22.0]}
    path = wt.plot_wall_time(tmp_path)
    assert path == tmp_path / "fig1_wall_time.png" and path.stat().st_size > 1000
