"""Issue 18 §1: fairseq's classification-head dropout (pooler_dropout 0.0) and weight-decay grouping (every
parameter) as named options, and the paper profile's defaults."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainingArguments, default_data_collator

from r3f_utils.experiments import glue
from r3f_utils.methods.trainers import R3FTrainer
from r3f_utils.methods.weight_decay import apply_weight_decay_scope, decayed_parameter_names
from r3f_utils.models import head_dropouts, load_model_and_tokenizer
from r3f_utils.registry import load_registry
from r3f_utils.tiny_models import build_tiny_model

ARCHS = ["tiny-roberta", "tiny-bert", "tiny-xlmr"]  # RoBERTa, BERT, XLM-R heads
TEXTS = ["a small example sentence", "another one here", "and a third text"]


@pytest.mark.parametrize("arch", ARCHS)
def test_head_dropout_sets_every_dropout_of_the_head(arch) -> None:
    default, _ = load_model_and_tokenizer(arch, head="classification", num_labels=2, texts=TEXTS, dropout=0.1)
    assert head_dropouts(default) and set(head_dropouts(default)) == {0.1}  # HF: the hidden dropout
    fairseq, _ = load_model_and_tokenizer(arch, head="classification", num_labels=2, texts=TEXTS, dropout=0.1,
                                          head_dropout=0.0)
    assert set(head_dropouts(fairseq)) == {0.0}
    # encoder dropout stays on: only the head changes
    assert any(m.p == 0.1 for m in fairseq.base_model.modules() if isinstance(m, torch.nn.Dropout))


@pytest.mark.parametrize("arch", ARCHS)
def test_head_dropout_on_a_saved_pretrained_model(arch, tmp_path) -> None:
    model, tokenizer = build_tiny_model(arch, texts=TEXTS, num_labels=3)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_model_and_tokenizer(str(tmp_path), head="classification", num_labels=3, head_dropout=0.0)
    assert set(head_dropouts(loaded)) == {0.0}
    # train mode with the encoder's dropout off: the head alone decides whether two passes agree
    loaded, _ = load_model_and_tokenizer(str(tmp_path), head="classification", num_labels=3, dropout=0.0,
                                         head_dropout=0.0)
    ids = torch.randint(5, 100, (4, 9))
    loaded.train()
    assert torch.equal(loaded(input_ids=ids).logits, loaded(input_ids=ids).logits)
    noisy, _ = load_model_and_tokenizer(str(tmp_path), head="classification", num_labels=3, dropout=0.0,
                                        head_dropout=0.5)
    noisy.train()
    assert not torch.equal(noisy(input_ids=ids).logits, noisy(input_ids=ids).logits)


def test_head_dropout_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match=r"head_dropout=1\.5"):
        load_model_and_tokenizer("tiny-roberta", head="classification", num_labels=2, texts=TEXTS, head_dropout=1.5)
    with pytest.raises(ValueError, match="head_dropout"):
        glue.resolve_glue_config(task="rte", method="standard", model_name="tiny-roberta", learning_rate=1e-3,
                                 max_updates=2, batch_size=2, head_dropout=-0.1, output_dir="x")
    with pytest.raises(ValueError, match="weight_decay_scope='bias'"):
        glue.resolve_glue_config(task="rte", method="standard", model_name="tiny-roberta", learning_rate=1e-3,
                                 max_updates=2, batch_size=2, weight_decay_scope="bias", output_dir="x")


def _trainer(tmp_path, scope: str | None) -> R3FTrainer:
    model, _ = build_tiny_model("tiny-roberta", num_labels=2)
    args = TrainingArguments(str(tmp_path), weight_decay=0.1, report_to=[], use_cpu=True)
    trainer = R3FTrainer(model=model, args=args, data_collator=default_data_collator)
    return trainer if scope is None else apply_weight_decay_scope(trainer, scope)


def _decay_of(trainer: R3FTrainer) -> dict[str, float]:
    optimizer = trainer.create_optimizer()
    by_id = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    return {name: by_id[id(p)] for name, p in trainer.model.named_parameters()}


def test_weight_decay_scope_all_decays_every_parameter_like_fairseq(tmp_path) -> None:
    hf = _decay_of(_trainer(tmp_path / "hf", None))
    assert hf["classifier.dense.bias"] == 0.0 and hf["classifier.dense.weight"] == 0.1
    assert _decay_of(_trainer(tmp_path / "nb", "no_bias_norm")) == hf
    fairseq = _decay_of(_trainer(tmp_path / "all", "all"))
    assert set(fairseq.values()) == {0.1}  # biases and LayerNorm weights included
    assert any("LayerNorm" in name for name in fairseq)
    with pytest.raises(ValueError, match="weight_decay_scope='none'"):
        decayed_parameter_names(None, torch.nn.Linear(1, 1), "none")


def test_build_trainer_applies_the_scope(tmp_path) -> None:
    cfg = glue.resolve_glue_config(task="rte", method="smart", model_name="tiny-roberta", learning_rate=1e-3,
                                   max_updates=2, batch_size=2, weight_decay_scope="all", head_dropout=0.0,
                                   data_dir="fixtures", output_dir=str(tmp_path))
    data = glue.load_glue_data(cfg)
    model, tokenizer = glue.build_glue_model(cfg, data.task.num_labels, data.texts())
    assert set(head_dropouts(model)) == {0.0}
    trainer = glue.build_glue_trainer(cfg, model, tokenizer, data, glue.tokenize_glue(data, tokenizer, cfg))
    assert set(_decay_of(trainer).values()) == {cfg.weight_decay}


GLUE_FAMILY = ("glue.ipynb", "xnli.ipynb", "probing.ipynb", "wall_time.ipynb")


def test_paper_profile_defaults_are_fairseqs_and_smoke_keeps_the_notebook_defaults() -> None:
    rows = [r for r in load_registry(check_notebooks=False)
            if r.role == "target" and (r.notebook or "").endswith(GLUE_FAMILY)]
    assert len(rows) > 50
    for row in rows:
        paper = row.parameters_for("paper")
        assert paper.get("head_dropout") == 0.0, row.id
        assert paper.get("weight_decay_scope") == "all", row.id
        for profile in ("smoke", "cpu"):
            if row.profile_spec(profile) is not None:
                params = row.parameters_for(profile)
                assert "head_dropout" not in params and "weight_decay_scope" not in params, (row.id, profile)


def test_ls_and_validate_show_the_paper_profiles_choices(tmp_path, capsys, monkeypatch) -> None:
    import dataclasses

    from r3f_utils.cli import main
    from r3f_utils.families import FAMILIES

    assert main(["ls", "--rows", "fig3.*"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("fig3.smart "))
    for shown in ("head_dropout=0.0", "weight_decay_scope=all", "smart_bregman_mu=1.0", "probe_standardize=True",
                  "probe_learning_rate_grid=[0.0001,0.001,0.01]"):
        assert shown in line, shown
    assert "smart_bregman_mu=0.0" in next(x for x in out.splitlines() if x.startswith("fig3.smart_mtdnn "))
    assert main(["validate", "--profile", "paper", "--no-notebooks"]) == 0
    out = capsys.readouterr().out
    assert "fidelity choices of the paper profile (rows): head_dropout=0.0" in out
    # a paper row that leaves a choice to the notebook's default is reported: the glue family's paper values
    # (r3f_utils/families.py) without head_dropout
    glue = FAMILIES["glue"]
    assert glue.profiles.paper["head_dropout"] == 0.0
    paper = {k: v for k, v in glue.profiles.paper.items() if k != "head_dropout"}
    monkeypatch.setitem(FAMILIES, "glue", dataclasses.replace(
        glue, profiles=dataclasses.replace(glue.profiles, paper=paper)))
    assert main(["validate", "--profile", "paper", "--no-notebooks"]) == 1
    out = capsys.readouterr().out
    assert "row 'table2a.rte.roberta_large_r3f': head_dropout is not set: the paper profile runs 0.0" in out
    assert "family's paper values, r3f_utils/families.py" in out


def test_applying_a_scope_draws_nothing_from_the_seeded_rng(tmp_path) -> None:
    trainer = _trainer(tmp_path, None)
    state = torch.get_rng_state()
    for scope in ("no_bias_norm", "all"):
        apply_weight_decay_scope(trainer, scope)
    assert torch.equal(state, torch.get_rng_state())  # the notebook default leaves the smoke values as they were
    with pytest.raises(ValueError, match="weight_decay_scope='x'"):
        apply_weight_decay_scope(trainer, "x")
