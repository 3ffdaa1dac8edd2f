"""``report --format model-index``: the reproduced values as a Hugging Face model card's ``model-index``.

The format is the one the Hub reads from a model card's YAML header and Papers with Code imports
(https://github.com/huggingface/hub-docs/blob/main/modelcard.md): one entry per model and method, each with
``results`` of ``task`` / ``dataset`` / ``metrics``. Only benchmark numbers go in (accuracy, F1, correlations,
ROUGE of rows with a dataset and a reproduced value); compute counts, wall times and probe scores do not. Every
metric carries ``args`` saying how it was obtained (registry row, profile, seeds and their aggregation, the
paper's value and the checker's verdict) and ``verified: false`` (these are self-reported runs).
Written as ``model-index.yaml`` and ``model-index.json`` (same content), atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text
from .checker import CheckResult
from .labels import aggregation_label, method_label, metric_label, task_label, task_of
from .registry import RegistryRow

__all__ = ["METRIC_TYPES", "model_index", "write_model_index"]

PAPER = "https://arxiv.org/abs/2008.03156"
# registry metric -> the Hub's metric id (evaluate's names)
METRIC_TYPES = {"accuracy": "accuracy", "accuracy_matched": "accuracy", "accuracy_mismatched": "accuracy",
                "accuracy_avg": "accuracy", "f1": "f1", "mcc": "matthews_correlation", "pearson": "pearsonr",
                "spearman": "spearmanr", "rouge1": "rouge", "rouge2": "rouge", "rougeL": "rouge", "rougeLsum": "rouge"}
_SUMMARIZATION = ("cnn_dailymail", "gigaword", "reddit_tifu")
_GLUE = ("mnli", "qqp", "rte", "qnli", "mrpc", "cola", "sst2", "stsb")


def _metric_type(metric: str) -> str | None:
    if metric in METRIC_TYPES:
        return METRIC_TYPES[metric]
    return "accuracy" if metric.startswith("accuracy_") else None  # XNLI per language


def _task(task: str) -> dict[str, str]:
    if task in _SUMMARIZATION:
        return {"type": "summarization", "name": "Summarization"}
    return {"type": "text-classification", "name": "Text Classification"}


def _dataset(row: RegistryRow) -> dict[str, str]:
    ref = row.dataset
    assert ref is not None
    task = task_of(row)
    name = f"GLUE {task_label(task)}" if task in _GLUE else task_label(task)
    out = {"type": ref.hub_id, "name": name}
    config = ", ".join(ref.config) if isinstance(ref.config, tuple) else ref.config
    split = ", ".join(ref.split) if isinstance(ref.split, tuple) else ref.split
    if config:
        out["config"] = str(config)
    if split:
        out["split"] = str(split)
    if ref.revision:
        out["revision"] = str(ref.revision)
    return out


def model_index(rows: Sequence[RegistryRow], result: CheckResult) -> dict[str, Any]:
    """``{"model-index": [...]}`` of the reproduced benchmark values in ``result``."""
    by_id = {r.id: r for r in rows}
    models: dict[str, dict[tuple, dict[str, Any]]] = {}
    for v in result.verdicts:
        row = by_id.get(v.row)
        kind = _metric_type(v.metric)
        if row is None or row.role != "target" or row.dataset is None or kind is None:
            continue
        if v.reproduced is None or v.verdict == "invalid":
            continue
        name = f"{row.model} {method_label(row.method)}"
        dataset = _dataset(row)
        key = (row.table, tuple(sorted(dataset.items())))
        entry = models.setdefault(name, {}).setdefault(key, {
            "task": _task(task_of(row)),
            "dataset": dataset,
            "metrics": [],
            "source": {"name": f"r3f-repro, {result.profile} profile (reproduction of arXiv 2008.03156, "
                               f"table {row.table})", "url": PAPER},
        })
        entry["metrics"].append({
            "type": kind,
            "value": round(float(v.reproduced), 4),
            "name": f"{metric_label(v.metric, task_of(row))} ("
                    + (aggregation_label(row.aggregation) if result.profile == "paper" else f"{result.profile} profile")
                    + ")",
            "verified": False,
            "args": {"row": row.id, "metric": v.metric, "profile": result.profile, "aggregation": row.aggregation,
                     "seeds": v.n_seeds, "seeds_needed": v.seeds_needed, "paper": v.paper, "verdict": v.verdict},
        })
    return {"model-index": [{"name": name, "results": list(results.values())} for name, results in models.items()]}


def write_model_index(rows: Sequence[RegistryRow], result: CheckResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``model-index.yaml`` and ``model-index.json`` into ``out_dir``; return their paths."""
    data = model_index(rows, result)
    out = Path(out_dir)
    note = ("" if result.profile == "paper" else
            f"# {result.profile} profile: regression pins of tiny/CPU models, not evidence about the paper\n")
    yaml_path = atomic_write_text(out / "model-index.yaml",
                                  note + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    json_path = atomic_write_text(out / "model-index.json", json.dumps(data, indent=2) + "\n")
    return yaml_path, json_path
