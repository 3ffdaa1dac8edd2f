"""When notebook runs save checkpoints: every evaluation (cpu/paper: resume loses at most one interval), or, in the
smoke profile, only after an evaluation that improved the best metric (same checkpoint loaded at the end)."""

from __future__ import annotations

import pytest
from transformers import TrainerCallback, TrainingArguments

from r3f_utils.experiments import checkpoints
from r3f_utils.experiments import glue as exp


@pytest.mark.parametrize(("profile", "strategy"), [("smoke", "best"), ("cpu", "steps"), ("paper", "steps")])
def test_save_strategy_per_profile_is_one_the_trainer_accepts(tmp_path, profile: str, strategy: str) -> None:
    arguments = checkpoints.checkpointed_run_arguments(tmp_path, eval_steps=5, seed=1, fp16=False, bf16=False,
                                                       profile=profile)
    assert arguments["save_strategy"] == strategy
    built = TrainingArguments(**arguments, metric_for_best_model="accuracy", use_cpu=True)  # validates the pair
    assert built.load_best_model_at_end and built.save_strategy == strategy


class _Saves(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_save(self, args, state, control, **kwargs):  # the Trainer's callback signature
        self.steps.append(state.global_step)


def test_smoke_run_saves_exactly_at_the_improving_evaluations_and_loads_the_best(tmp_path) -> None:
    cfg = exp.resolve_glue_config(task="rte", method="standard", model_name="tiny-roberta", learning_rate=1e-3,
                                  max_updates=60, batch_size=8, data_dir="fixtures", seed=1,
                                  output_dir=str(tmp_path), profile="smoke", experiment="t")
    data = exp.load_glue_data(cfg)
    model, tokenizer = exp.build_glue_model(cfg, data.task.num_labels, data.texts())
    trainer = exp.build_glue_trainer(cfg, model, tokenizer, data, exp.tokenize_glue(data, tokenizer, cfg))
    saves = _Saves()
    trainer.add_callback(saves)
    summary = exp.train_with_resume(trainer, cfg)

    evaluations = [(e["step"], e["eval_accuracy"]) for e in trainer.state.log_history if "eval_accuracy" in e]
    assert len(evaluations) == 12  # 60 updates, an evaluation per 5-update epoch
    improving, best = [], float("-inf")
    for step, value in evaluations:
        if value > best:
            improving.append(step)
            best = value
    assert saves.steps == improving and len(improving) < len(evaluations)
    assert summary["best_checkpoint"] == f"checkpoint-{improving[-1]}" and summary["best_metric"] == best
