"""GLUE tasks of Table 2 (plus STS-B): the task table and one loader for the Hub and local files.

The Hub dataset is ``nyu-mll/glue`` with one config per task. A local copy uses the same field names, one
folder per task: ``<data_dir>/<task>/<split>.jsonl`` (or ``.json`` / ``.csv``), e.g. ``mnli/train.jsonl``,
``mnli/validation_matched.jsonl`` and ``mnli/validation_mismatched.jsonl``. ``data_dir`` may also be the task
folder itself. Both paths go through :func:`r3f_utils.data.sources.load_split`.

GLUE's test labels are hidden (-1), so Table 2, like the paper, is computed on the dev ("validation") sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from r3f_utils.data.sources import load_split

__all__ = ["GLUE_HUB_ID", "GLUE_TASKS", "GlueData", "GlueTask", "get_glue_task", "load_glue", "task_data_dir"]

GLUE_HUB_ID = "nyu-mll/glue"


@dataclass(frozen=True)
class GlueTask:
    """What differs between GLUE tasks, as data (no ``if task == ...`` elsewhere)."""

    name: str  # the Hub config name and the notebook's ``task`` parameter
    text_keys: tuple[str, ...]  # one or two text fields, in the order the model sees them
    num_labels: int  # 1 = regression head
    metrics: tuple[str, ...]  # r3f_utils.metrics names reported for each dev split
    best_metric: str  # dev metric that chooses the best checkpoint
    # dev split suffix -> Hub split name; the suffix ("" = none) is appended to the metric names in results.json
    dev_splits: tuple[tuple[str, str], ...] = (("", "validation"),)

    @property
    def is_regression(self) -> bool:
        """STS-B: a 1-output regression head trained with MSE (the official R3F code adds no KL for it)."""
        return self.num_labels == 1

    @property
    def selection_split(self) -> str:
        """Dev split evaluated during training for checkpoint selection (the first: MNLI matched)."""
        return self.dev_splits[0][1]

    def metric_names(self) -> list[str]:
        """Names this task writes to results.json, e.g. ``accuracy_matched``, ``accuracy_mismatched``."""
        return [f"{m}_{suffix}" if suffix else m for suffix, _ in self.dev_splits for m in self.metrics]


GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("mnli", ("premise", "hypothesis"), 3, ("accuracy",), "accuracy",
                 (("matched", "validation_matched"), ("mismatched", "validation_mismatched"))),
        GlueTask("qqp", ("question1", "question2"), 2, ("accuracy", "f1"), "accuracy"),
        GlueTask("rte", ("sentence1", "sentence2"), 2, ("accuracy",), "accuracy"),
        GlueTask("qnli", ("question", "sentence"), 2, ("accuracy",), "accuracy"),
        GlueTask("mrpc", ("sentence1", "sentence2"), 2, ("accuracy", "f1"), "accuracy"),
        GlueTask("cola", ("sentence",), 2, ("mcc",), "mcc"),
        GlueTask("sst2", ("sentence",), 2, ("accuracy",), "accuracy"),
        GlueTask("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman"), "pearson"),
    )
}


def get_glue_task(task: str) -> GlueTask:
    """The :class:`GlueTask` for ``task`` (case-insensitive; ``sst-2``/``sts-b`` accepted)."""
    key = task.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {task!r}; choose one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


@dataclass
class GlueData:
    """The training split and every dev split of one task."""

    task: GlueTask
    train: datasets.Dataset
    dev: dict[str, datasets.Dataset]  # suffix ("" or "matched"/"mismatched") -> split

    def texts(self) -> list[str]:
        """All training texts (used to train a tiny model's tokenizer)."""
        return [str(t) for key in self.task.text_keys for t in self.train[key]]


def task_data_dir(data_dir: str | Path | None, task: str) -> Path | None:
    """``<data_dir>/<task>`` when that folder exists, else ``data_dir`` itself (a task folder), else None."""
    if data_dir is None:
        return None
    root = Path(data_dir)
    return root / task if (root / task).is_dir() else root


def _check_fields(ds: datasets.Dataset, task: GlueTask, split: str) -> None:
    missing = [k for k in (*task.text_keys, "label") if k not in ds.column_names]
    if missing:
        raise ValueError(f"GLUE {task.name} {split}: fields {missing} are missing (found {ds.column_names}); "
                         f"local files need the Hub's field names {[*task.text_keys, 'label']}")


def _take(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    return ds if limit is None or limit >= len(ds) else ds.select(range(limit))


def load_glue(
    task: str,
    *,
    data_dir: str | Path | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> GlueData:
    """Load the train split and all dev splits of a GLUE task, from ``data_dir`` or the Hub.

    ``max_*_samples`` keep the first N examples (quick runs); None keeps everything. Labels of regression
    tasks are cast to float32, classification labels must be in ``range(num_labels)``.

    Raises:
        ValueError: unknown task, missing fields or out-of-range labels.
        r3f_utils.data.DatasetUnavailableError: neither the local files nor the Hub are available.
    """
    spec = get_glue_task(task)
    folder = task_data_dir(data_dir, spec.name)
    splits = {"train": load_split(GLUE_HUB_ID, spec.name, "train", data_dir=folder)}
    for suffix, split in spec.dev_splits:
        splits[suffix or split] = load_split(GLUE_HUB_ID, spec.name, split, data_dir=folder)
    for name, ds in splits.items():
        _check_fields(ds, spec, name)
    train = _take(splits.pop("train"), max_train_samples)
    dev = {suffix: _take(splits[suffix or split], max_eval_samples) for suffix, split in spec.dev_splits}
    for name, ds in {"train": train, **{s or "validation": d for s, d in dev.items()}}.items():
        if spec.is_regression:
            continue
        bad = sorted({int(x) for x in ds["label"]} - set(range(spec.num_labels)))
        if bad:
            raise ValueError(f"GLUE {spec.name} {name}: labels {bad} are outside 0..{spec.num_labels - 1} "
                             "(test splits carry label -1: evaluate on the validation splits)")
    if spec.is_regression:
        train = train.cast_column("label", datasets.Value("float32"))
        dev = {s: d.cast_column("label", datasets.Value("float32")) for s, d in dev.items()}
    return GlueData(task=spec, train=train, dev=dev)
