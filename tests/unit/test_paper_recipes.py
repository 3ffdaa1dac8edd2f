"""The paper profile's recipes: Hub datasets in a form the pinned ``datasets`` loads (the Parquet conversion
of loading-script repositories, read through the same call from a local copy), the registry's dataset
mapping, derived budgets and ``validate --profile paper``.

Budget: ~3 s (offline, no model).
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from r3f_utils.data.sources import PARQUET_CONVERSION, load_split
from r3f_utils.data.summarization import SUMMARIZATION_DATASETS, load_summarization
from r3f_utils.registry import load_registry

REGISTRY = Path(__file__).resolve().parents[2] / "results_registry.yaml"


def _write_conversion(root: Path, config: str, split: str, rows: dict[str, list], shards: int = 2) -> None:
    """A local copy of the Hub's Parquet conversion branch: <config>/<split>/0000.parquet, 0001.parquet, ..."""
    folder = root / config / split
    folder.mkdir(parents=True)
    for shard in range(shards):
        part = {k: v[shard::shards] for k, v in rows.items()}
        datasets.Dataset.from_dict(part).to_parquet(str(folder / f"{shard:04d}.parquet"))


def test_gigaword_and_reddit_tifu_load_from_a_copy_of_the_parquet_conversion(tmp_path) -> None:
    giga = {"document": [f"doc {i} words here" for i in range(6)], "summary": [f"head {i}" for i in range(6)]}
    _write_conversion(tmp_path / "gigaword", "default", "test", giga)
    test = load_summarization("gigaword", "test", data_dir=tmp_path / "gigaword")
    assert sorted(test["target"]) == sorted(giga["summary"]) and test.column_names == ["source", "target"]
    posts = [f"post number {i} about something" for i in range(40)]
    reddit = {"documents": posts, "tldr": [f"tldr {i}" for i in range(40)], "title": [f"t{i}" for i in range(40)]}
    _write_conversion(tmp_path / "reddit_tifu", "long", "train", reddit)
    _write_conversion(tmp_path / "reddit_tifu", "short", "train", {k: v[:3] for k, v in reddit.items()})
    parts = [load_summarization("reddit_tifu", s, data_dir=tmp_path / "reddit_tifu") for s in ("train", "validation",
                                                                                               "test")]
    assert sum(len(p) for p in parts) == 40  # the 'long' config only, all its shards, cut 80/10/10


def test_the_hub_and_a_local_copy_take_the_same_datasets_call(tmp_path, monkeypatch) -> None:
    calls: list[tuple] = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_dict({"document": ["d"], "summary": ["s"]})

    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)  # sources imports it where it loads
    (tmp_path / "default" / "test").mkdir(parents=True)
    spec = SUMMARIZATION_DATASETS["gigaword"]
    load_split(spec.hub_id, spec.config, "test", revision=spec.revision)
    load_split(spec.hub_id, spec.config, "test", revision=spec.revision, data_dir=tmp_path)
    hub, local = calls
    assert hub == (("parquet",), {"data_files": {"test": "hf://datasets/Harvard/gigaword@refs/convert/parquet/"
                                                          "default/test/*.parquet"}, "split": "test"})
    assert local == (("parquet",), {"data_files": {"test": f"{tmp_path}/default/test/*.parquet"}, "split": "test"})


def test_registry_records_the_loaders_hub_id_config_and_revision() -> None:
    rows = [r for r in load_registry(REGISTRY, check_notebooks=False) if r.task == "summarization"]
    for row in rows:
        spec = SUMMARIZATION_DATASETS[row.id.split(".")[1]]
        assert (row.dataset.hub_id, row.dataset.config, row.dataset.revision) == (
            spec.hub_id, spec.config, spec.revision), row.id
    assert {r.dataset.revision for r in rows if "gigaword" in r.id or "reddit" in r.id} == {PARQUET_CONVERSION}


def test_registry_rejects_a_bad_revision(tmp_path) -> None:
    text = REGISTRY.read_text().replace("revision: refs/convert/parquet}", "revision: 7}", 1)
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"dataset\.revision.*expected a Hub revision"):
        load_registry(tmp_path / "r.yaml", check_notebooks=False)


def _validate_paper(registry: Path, capsys) -> tuple[int, str]:
    from r3f_utils.cli import main

    code = main(["validate", "--registry", str(registry), "--profile", "paper", "--no-notebooks"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _doctored(tmp_path: Path, old: str, new: str, count: int = -1) -> Path:
    text = REGISTRY.read_text()
    assert old in text
    (tmp_path / "registry.yaml").write_text(text.replace(old, new, count))
    return tmp_path / "registry.yaml"


def test_validate_paper_lists_downloads_updates_epochs_and_gpu_hours(capsys) -> None:
    code, out = _validate_paper(REGISTRY, capsys)
    assert code == 0, out
    line = next(x for x in out.splitlines() if x.startswith("table4.gigaword.bart_r3f "))
    updates, epochs, hours = line.split()[1:4]
    assert int(updates) > 1000 and 1 <= float(epochs) <= 20 and float(hours) > 0
    assert "Harvard/gigaword/default@refs/convert/parquet:train" in line
    assert "ctr4si/reddit_tifu/long@refs/convert/parquet:train" in out
    assert "facebook/xnli/sw:test" in out and "nyu-mll/glue/mnli:validation_mismatched" in out
    assert "estimated GPU-hours, all runs x seeds" in out


def test_validate_paper_fails_on_a_loading_script_dataset_without_the_conversion(tmp_path, capsys) -> None:
    registry = _doctored(tmp_path, "split: test, revision: refs/convert/parquet}", "split: test}")
    code, out = _validate_paper(registry, capsys)
    assert code == 1
    assert "Harvard/gigaword is a loading-script repository" in out and "revision: refs/convert/parquet" in out


def test_validate_paper_fails_when_a_row_names_another_dataset_than_its_loader(tmp_path, capsys) -> None:
    registry = _doctored(tmp_path, "config: [en, fr, es, de, el, bg, ru, tr, ar, vi, th, zh, hi, sw, ur]",
                         "config: all_languages")
    code, out = _validate_paper(registry, capsys)
    assert code == 1 and "row 'table3.xnli.xlmr_large': dataset is" in out and "loader reads" in out


def test_summarization_budgets_are_the_published_ones_and_evaluate_often(tmp_path, capsys) -> None:
    from r3f_utils.recipes import MIN_EVALUATIONS, SUMMARIZATION_STATS, derive_summarization_budget

    rows = [r for r in load_registry(REGISTRY, check_notebooks=False) if r.task == "summarization"
            and r.role == "target"]
    published = {"cnn_dailymail": (20000, 500), "reddit_tifu": (200000, 5000)}  # BART README; fairseq #4411
    for row in rows:
        budget, p = derive_summarization_budget(row.parameters["dataset"]), row.parameters
        assert (p["batch_size"], p["gradient_accumulation_steps"], p["max_updates"], p["warmup_updates"],
                p["eval_steps"]) == (budget.batch_size, budget.gradient_accumulation_steps, budget.updates,
                                     budget.warmup_updates, budget.eval_steps), row.id
        if budget.dataset in published:
            assert (budget.updates, budget.warmup_updates) == published[budget.dataset] and budget.source
        else:  # Gigaword: no published budget, the note says exactly what is assumed
            assert not budget.source and budget.derivation().startswith("Budget ASSUMED (no published gigaword")
            assert 2 <= budget.epochs <= 10
        assert p["max_updates"] // p["eval_steps"] >= MIN_EVALUATIONS
        assert any(n.startswith(budget.derivation()) for n in row.notes), row.id
        # documents per update ~ the source's tokens per update (within one micro-batch of rounding)
        tokens = budget.documents_per_update * SUMMARIZATION_STATS[budget.dataset][1]
        assert abs(tokens - budget.tokens_per_update) <= budget.batch_size * SUMMARIZATION_STATS[budget.dataset][1]
    assert "#4411" in derive_summarization_budget("reddit_tifu").derivation()
    # the former CNN/DM and Reddit TIFU budgets (every dataset at CNN/DM's epochs) are refused
    registry = _doctored(tmp_path, "max_updates: 20000, warmup_updates: 500, eval_steps: 2000",
                         "max_updates: 19051, warmup_updates: 476, eval_steps: 1905", 1)
    code, out = _validate_paper(registry, capsys)
    assert code == 1 and "row 'table4.cnn_dailymail.bart': max_updates is 19051, the budget gives 20000" in out
    assert "warmup_updates is 476, the budget gives 500" in out
    registry = _doctored(tmp_path, "max_updates: 200000, warmup_updates: 5000, eval_steps: 2107",
                         "max_updates: 1491, warmup_updates: 37, eval_steps: 149", 1)
    code, out = _validate_paper(registry, capsys)
    assert code == 1 and "row 'table4.reddit_tifu.bart': max_updates is 1491, the budget gives 200000" in out


def test_std_baselines_carry_their_sources_recipe_and_aggregation() -> None:
    from r3f_utils.experiments.glue import RunConfig

    rows = {r.id: r for r in load_registry(REGISTRY, check_notebooks=False)}
    fairseq = {"mnli": (1e-5, 32, 123873), "qqp": (1e-5, 32, 113272), "rte": (2e-5, 16, 2036),
               "qnli": (1e-5, 32, 33112), "mrpc": (1e-5, 16, 2296), "cola": (1e-5, 16, 5336), "sst2": (1e-5, 32, 20935)}
    for task, (lr, batch, updates) in fairseq.items():
        std = rows[f"table2a.{task}.roberta_large_std"]
        p = std.parameters
        assert std.aggregation == "median_of_5" and std.seeds_needed == 5
        assert (p["learning_rate"], p["batch_size"], p["max_updates"], p["weight_decay"]) == (lr, batch, updates, 0.1)
        assert any("RoBERTa paper" in n and "median of 5 runs" in n for n in std.notes)
        median = rows[f"table2b.{task}.roberta_large_std"]
        assert median.aggregation == "median_of_10" and median.experiment != std.experiment
        assert not any("published RoBERTa numbers" in n for n in median.notes)
        stdpp = rows[f"table2a.{task}.roberta_large_stdpp"]
        factor = RunConfig.model_fields["longer_training_factor"].default
        assert any(f"longer_training_factor {factor}" in n for n in stdpp.notes), task


def test_one_spelling_per_fact_for_table1_xnli_and_checkpoint_selection() -> None:
    from r3f_utils.registry import XNLI_LANGUAGES

    rows = load_registry(REGISTRY, check_notebooks=False)
    assert all(r.dataset is None for r in rows if r.table == "1")  # pass counts use random token batches
    assert all(r.dataset.config == XNLI_LANGUAGES for r in rows if r.task == "xnli")
    docs = (REGISTRY.parent / "docs" / "registry.md").read_text()
    assert "measured by `notebooks/compute_cost.ipynb`" in docs and "MCC for\n  CoLA**, a deviation" in docs


def test_cpu_profile_rows_run_minilm_with_their_own_pins_and_compare_the_released_path() -> None:
    rows = {r.id: r for r in load_registry(REGISTRY, check_notebooks=False)}
    cpu_rows = [r for r in rows.values() if r.cpu is not None]
    assert {r.experiment for r in cpu_rows} >= {"table2.sst2.roberta_large_std", "table2.sst2.roberta_large_r3f",
                                                "table2.sst2.roberta_large_r4f",
                                                "released.sst2.roberta_large_r3f_noise_none"}
    for row in cpu_rows:
        if row.table.startswith("fig"):
            continue  # Figure 1's cpu runs measure wall time (no pinned numbers; issue 9)
        assert row.parameters_for("cpu")["model_name"] == "minilm" != row.parameters_for("smoke").get("model_name")
        assert row.cpu.expected and row.cpu.tolerance and row.cpu.expected != row.smoke.expected, row.id
    released, paper = rows["released.sst2.roberta_large_r3f_noise_none"], rows["table2a.sst2.roberta_large_r3f"]
    for profile in ("paper", "cpu"):
        ours, theirs = released.parameters_for(profile), paper.parameters_for(profile)
        assert (ours.pop("noise_type"), theirs.pop("noise_type")) == ("none", "uniform") and ours == theirs


def test_glue_notebook_config_accepts_the_cpu_profile_only_with_real_weights() -> None:
    from r3f_utils.experiments.glue import resolve_glue_config

    base = dict(task="sst2", method="r3f", learning_rate=1e-4, max_updates=2, batch_size=2, data_dir="fixtures",
                output_dir="unused", profile="cpu", noise_type="none")
    assert resolve_glue_config(model_name="minilm", **base).profile == "cpu"
    with pytest.raises(ValueError, match=r"model_name='tiny-roberta'.*cpu profile runs real pretrained weights"):
        resolve_glue_config(model_name="tiny-roberta", **base)


def test_every_summarization_smoke_pin_shows_learning_and_tells_bart_from_bart_r3f() -> None:
    """A pin that a broken seq2seq R3F path cannot move is no pin: ROUGE-2 > 0, BART != BART+R3F."""
    rows = {r.id: r for r in load_registry(REGISTRY, check_notebooks=False)}
    for dataset in ("cnn_dailymail", "gigaword", "reddit_tifu"):
        bart, r3f = rows[f"table4.{dataset}.bart"].smoke.expected, rows[f"table4.{dataset}.bart_r3f"].smoke.expected
        assert bart["rouge2"] > 0 and r3f["rouge2"] > 0, dataset
        assert any(abs(bart[m] - r3f[m]) > rows[f"table4.{dataset}.bart"].smoke.tolerance[m] for m in bart), dataset
