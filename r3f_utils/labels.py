"""Registry names as words for people: tasks ("SST-2"), metrics ("MNLI matched accuracy"), methods, aggregations.

Used by the report and the model-index export; the registry keeps its short names (``accuracy_matched``).
"""

from __future__ import annotations

import re

from .registry import RegistryRow

__all__ = ["aggregation_label", "method_label", "metric_label", "row_label", "task_label", "task_of"]

TASKS = {
    "mnli": "MNLI", "qqp": "QQP", "rte": "RTE", "qnli": "QNLI", "mrpc": "MRPC", "cola": "CoLA", "sst2": "SST-2",
    "stsb": "STS-B", "xnli": "XNLI", "cnn_dailymail": "CNN/DailyMail", "gigaword": "Gigaword",
    "reddit_tifu": "Reddit TIFU", "training_cost": "training cost", "summarization": "summarization",
}
LANGUAGES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "el": "Greek", "bg": "Bulgarian",
    "ru": "Russian", "tr": "Turkish", "ar": "Arabic", "vi": "Vietnamese", "th": "Thai", "zh": "Chinese",
    "hi": "Hindi", "sw": "Swahili", "ur": "Urdu",
}
METHODS = {"standard": "standard", "std++": "standard++", "r3f": "R3F", "r4f": "R4F", "smart": "SMART",
           "freelb": "FreeLB"}
# metrics whose words do not depend on the task
_PLAIN = {
    "accuracy_avg": "average accuracy (15 languages)",
    "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
    "forward_passes": "forward passes per step", "backward_passes": "backward passes per step",
    "cost_xfp": "cost per step (forward-pass units)", "wall_time_to_best": "seconds to the best checkpoint",
    "seconds_per_epoch": "seconds per epoch",
    "probe_final": "source-task probe after the last stage", "probe_drop": "probe drop (first minus last stage)",
    "probe_mean": "mean probe score",
}
_PER_TASK = {"accuracy": "accuracy", "f1": "F1", "mcc": "Matthews correlation", "pearson": "Pearson correlation",
             "spearman": "Spearman correlation"}


def task_label(task: str) -> str:
    """``sst2`` -> ``SST-2``; unknown names are returned as they are."""
    return TASKS.get(task, task)


def task_of(row: RegistryRow) -> str:
    """The task a row's numbers are on: the summarization dataset for Table 4, else the row's ``task``."""
    if row.task == "summarization" and row.parameters.get("dataset"):
        return str(row.parameters["dataset"])
    return row.task


def metric_label(metric: str, task: str | None = None) -> str:
    """A metric in words, with its task where the metric alone would not say it: ``accuracy_matched`` ->
    ``MNLI matched accuracy``, ``accuracy`` of ``rte`` -> ``RTE accuracy``, ``accuracy_fr`` -> ``French accuracy``."""
    prefix = f"{task_label(task)} " if task and task not in ("training_cost", "summarization") else ""
    if metric in ("accuracy_matched", "accuracy_mismatched"):
        return f"MNLI {metric.split('_')[1]} accuracy"
    if metric in _PER_TASK:
        return prefix + _PER_TASK[metric]
    if metric in _PLAIN:
        if metric.startswith("rouge") or metric in ("wall_time_to_best", "seconds_per_epoch"):
            return prefix + _PLAIN[metric]
        return _PLAIN[metric]
    lang = re.fullmatch(r"accuracy_([a-z]{2})", metric)
    if lang and lang.group(1) in LANGUAGES:
        return f"{LANGUAGES[lang.group(1)]} accuracy"
    probe = re.fullmatch(r"probe_(?:(after)_|c(\d)_)?([a-z0-9]+)", metric)
    if probe:
        after, cycle, name = probe.groups()
        if after:
            return f"source-task probe after the {task_label(name)} stage"
        if cycle:
            return f"{task_label(name)} probe, cycle {cycle}"
        return f"{task_label(name)} probe" + (f" (encoder fine-tuned on {task_label(task)})" if task else "")
    return metric.replace("_", " ")


def method_label(method: str) -> str:
    """``r3f`` -> ``R3F``, ``std++`` -> ``standard++``."""
    return METHODS.get(method, method)


def aggregation_label(aggregation: str) -> str:
    """``max_of_10`` -> ``best of 10 seeds``."""
    match = re.fullmatch(r"(max|median|mean)_of_(\d+)", aggregation)
    if match:
        how = {"max": "best", "median": "median", "mean": "mean"}[match.group(1)]
        return f"{how} of {match.group(2)} seeds"
    return "1 seed" if aggregation == "single" else aggregation.replace("_", " ")


def row_label(row: RegistryRow, *, with_aggregation: bool = False) -> str:
    """``roberta-large R3F`` (+ `` (best of 10 seeds)``) (+ `` (reported)`` for a row quoted from elsewhere)."""
    label = f"{row.model} {method_label(row.method)}"
    if with_aggregation:
        label += f" ({aggregation_label(row.aggregation)})"
    return label + ("" if row.role == "target" else " (reported)")
