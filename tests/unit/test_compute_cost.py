"""Pass counting for Table 1 on real training steps."""

from __future__ import annotations

import pytest

from r3f_utils import FreeLBConfig, R3FConfig, SMARTConfig
from r3f_utils.experiments import compute_cost as cc
from r3f_utils.tiny_models import build_tiny_model


@pytest.mark.parametrize(
    ("method", "pass_mode", "expected"),
    [("standard", "concat", (1, 1, 3)), ("r3f", "concat", (2, 1, 4)), ("r3f", "separate", (2, 1, 4)),
     ("r4f", "concat", (2, 1, 4))],
)
def test_counts_match_table_1(method: str, pass_mode: str, expected: tuple[int, int, int]) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    trainer = cc.build_trainer(model, method, R3FConfig(pass_mode=pass_mode))
    batch = cc.random_batch(model.config.vocab_size, batch_size=4, length=8)
    passes = cc.count_passes(trainer, batch)
    assert (passes.forward_passes, passes.backward_passes, passes.cost_xfp) == expected


def test_timing_returns_a_median_per_trainer_and_bad_method_is_refused() -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    trainers = {"standard": cc.build_trainer(model, "standard"), "r3f": cc.build_trainer(model, "r3f")}
    seconds = cc.time_steps(trainers, cc.random_batch(model.config.vocab_size, 4, 8), steps=2)
    assert set(seconds) == {"standard", "r3f"} and all(v > 0 for v in seconds.values())
    with pytest.raises(ValueError, match="method must be one of"):
        cc.build_trainer(model, "sam")


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_freelb_counts_match_table_1_and_smart_counts_one_forward_more(steps: int) -> None:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    batch = cc.random_batch(model.config.vocab_size, batch_size=4, length=8)
    freelb = cc.count_passes(cc.build_trainer(model, "freelb", freelb=FreeLBConfig(ascent_steps=steps)), batch)
    assert (freelb.forward_passes, freelb.backward_passes, freelb.cost_xfp) == cc.table1_formula("freelb", steps)
    assert freelb.input_backward_passes == 0
    smart = cc.count_passes(cc.build_trainer(model, "smart", smart=SMARTConfig(ascent_steps=steps)), batch)
    # clean + S ascent + final forward; S input-only gradients + 1 full backward (Table 1: 1+S and 1+S)
    assert (smart.forward_passes, smart.backward_passes, smart.input_backward_passes) == (steps + 2, steps + 1, steps)
    assert cc.table1_formula("smart", steps) == (1 + steps, 1 + steps, 3 + 3 * steps)
