"""The steps of ``notebooks/probing.ipynb``: the paper's three probing studies (Figures 3, 4 and 5).

One execution = one study, one method, one seed. Every fine-tuning stage is a GLUE run of
:mod:`r3f_utils.experiments.glue` (same config, data loaders, model, R4F surgery, Trainer, recipe and best-
checkpoint selection); after a stage, the fine-tuned encoder is probed with :mod:`r3f_utils.methods.probing`
(frozen, dropout off, a fresh linear layer on the ``<s>`` state).

* ``generalization`` (Fig. 3): fine-tune on ``source_task`` (SST-2), then probe each of ``probe_tasks``
  (MNLI, QQP, RTE, QNLI, MRPC, CoLA). Metrics ``probe_<task>``.
* ``degradation`` (Fig. 4): fine-tune along ``chain`` (SST-2 → QNLI → QQP → RTE), each stage starting from the
  previous stage's best checkpoint with a fresh head; after every stage, probe the chain's first task.
  Metrics ``probe_after_<task>``, ``probe_final`` (after the last stage) and ``probe_drop`` (after the first
  stage minus after the last).
* ``retention`` (Fig. 5): the cyclic chain for ``cycles`` cycles; after training on a task, probe the next
  task of the cycle before training on it. Metrics ``probe_c<cycle>_<probed task>`` and ``probe_mean``.

The probe's metric is the probed task's checkpoint-selection metric (accuracy; MCC for CoLA; MNLI: matched)
on its dev split. Each stage writes ``stages/<NN>-<task>/stage.json`` (and, until the next stage is done, the
encoder weights), so an interrupted chain resumes after its last finished stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r3f_utils.atomic import atomic_write_text
from r3f_utils.data.glue import GlueData, get_glue_task
from r3f_utils.experiments import glue
from r3f_utils.methods.probing import ProbeConfig, encoder_of, probe_encoder
from r3f_utils.params import PAPER_CHAIN, PAPER_PROBE_TASKS, PROBE_MAX_CYCLES, PROBING_STUDIES, ProbingParams, resolve

__all__ = [
    "PAPER_CHAIN",
    "PAPER_PROBE_TASKS",
    "STUDIES",
    "ProbingConfig",
    "Stage",
    "StudyOutcome",
    "plan_stages",
    "remove_stage_files",
    "resolve_probing_config",
    "run_extra",
    "run_study",
    "stage_config",
]

STUDIES = PROBING_STUDIES  # generalization (Figure 3), degradation (Figure 4), retention (Figure 5)
MAX_CYCLES = PROBE_MAX_CYCLES  # retention metric names exist for cycles 1..MAX_CYCLES
# notebook parameters of the probe itself, ``probe_<field of ProbeConfig>``; every other one (but the study's) is a
# GLUE fine-tuning parameter
_PROBE_PARAMS = {f"probe_{f.name}": f.name for f in dataclasses.fields(ProbeConfig)
                 if f"probe_{f.name}" in ProbingParams.model_fields}
_PER_TASK = ("learning_rate", "max_updates", "batch_size")  # None: the task's value in the reference table


@dataclass
class ProbingConfig:
    """One probing run: the study, the fine-tuning parameters shared by its stages and the probe's."""

    study: str
    method: str
    seed: int
    output_dir: str
    profile: str
    experiment: str  # the registry experiment the run feeds
    source_task: str = "sst2"
    probe_tasks: tuple[str, ...] = PAPER_PROBE_TASKS
    chain: tuple[str, ...] = PAPER_CHAIN
    cycles: int = 3
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # GLUE RunConfig parameters of every stage (learning_rate/max_updates/batch_size None: per task, paper table)
    stage_params: dict[str, Any] = field(default_factory=dict)

    def tasks(self) -> list[str]:
        """Every task the study trains or probes, in first-use order."""
        order = [self.source_task, *self.probe_tasks] if self.study == "generalization" else list(self.chain)
        return list(dict.fromkeys(order))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters for results.json."""
        return {"study": self.study, "method": self.method, "seed": self.seed,
                "source_task": self.source_task, "probe_tasks": list(self.probe_tasks), "chain": list(self.chain),
                "cycles": self.cycles, "probe": self.probe.to_dict(), "stage": dict(self.stage_params),
                "output_dir": self.output_dir, "profile": self.profile, "experiment": self.experiment}


def _task_names(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"parameter {name}={value!r} is invalid: a non-empty list of GLUE task names")
    tasks = tuple(get_glue_task(t).name for t in value)
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"parameter {name}={list(value)!r} is invalid: each task may appear only once")
    return tasks


def resolve_probing_config(**params: Any) -> ProbingConfig:
    """Build and validate a :class:`ProbingConfig` from the notebook's parameters.

    The parameters are :class:`r3f_utils.params.ProbingParams` (missing ones take its defaults). Unknown names
    raise TypeError naming them; bad values raise ValueError naming the parameter, the value and what is allowed.
    Every stage's GLUE config is resolved here too, so a bad fine-tuning parameter stops the run before anything
    trains.
    """
    params = resolve(ProbingParams, params).to_params()
    study = params.pop("study", None)
    if study not in STUDIES:
        raise ValueError(f"parameter study={study!r} is invalid: choose one of {list(STUDIES)}")
    if params.get("output_dir") is None:  # a fresh folder for interactive runs (results.json is written once)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        params["output_dir"] = f"runs/notebook/probing-{study}-{params.get('method')}-{stamp}"
    probe = ProbeConfig(**{_PROBE_PARAMS[k]: params.pop(k) for k in list(params) if k in _PROBE_PARAMS},
                        seed=int(params.get("seed", 0)), bf16=bool(params.get("bf16", False)))
    cycles = params.pop("cycles", 3)
    if isinstance(cycles, bool) or not isinstance(cycles, int) or not 1 <= cycles <= MAX_CYCLES:
        raise ValueError(f"parameter cycles={cycles!r} is invalid: an integer in 1..{MAX_CYCLES}")
    source = get_glue_task(params.pop("source_task", "sst2")).name
    probe_tasks = _task_names(params.pop("probe_tasks", PAPER_PROBE_TASKS), "probe_tasks")
    chain = _task_names(params.pop("chain", PAPER_CHAIN), "chain")
    if study == "generalization" and source in probe_tasks:
        raise ValueError(f"parameter probe_tasks={list(probe_tasks)!r} is invalid: it must not contain the "
                         f"source_task {source!r} (Figure 3 probes tasks the encoder was not fine-tuned on)")
    if study != "generalization" and len(chain) < 2:
        raise ValueError(f"parameter chain={list(chain)!r} is invalid: a chain needs at least two tasks")
    identity = {k: params.pop(k) for k in ("seed", "output_dir", "profile", "experiment") if k in params}
    cfg = ProbingConfig(study=study, method=str(params.get("method")), seed=int(identity.get("seed", 0)),
                        output_dir=str(identity["output_dir"]), profile=str(identity.get("profile", "smoke")),
                        experiment=str(identity.get("experiment", "")), source_task=source, probe_tasks=probe_tasks,
                        chain=chain,
                        cycles=cycles, probe=probe, stage_params=params)
    for task in cfg.tasks():
        stage_config(cfg, task, 0)  # validates every stage's parameters now
    return cfg


def stage_config(cfg: ProbingConfig, task: str, index: int) -> glue.RunConfig:
    """The GLUE :class:`~r3f_utils.experiments.glue.RunConfig` of stage ``index`` (fine-tuning on ``task``), in
    ``<output_dir>/stages/<NN>-<task>``; learning rate, updates and batch size left None come from the
    reference GLUE table for ``task``."""
    params = dict(cfg.stage_params)
    for key in _PER_TASK:
        if params.get(key) is None:
            if task not in glue.PAPER_GLUE_HPARAMS:
                raise ValueError(f"parameter {key}=None means the reference table's value, which {task!r} does "
                                 f"not have (tasks: {sorted(glue.PAPER_GLUE_HPARAMS)}): give {key}")
            params[key] = glue.PAPER_GLUE_HPARAMS[task][key]
    return glue.resolve_glue_config(**params, task=task, seed=cfg.seed, profile=cfg.profile, experiment=cfg.experiment,
                                    output_dir=str(Path(cfg.output_dir) / "stages" / f"{index:02d}-{task}"))


@dataclass(frozen=True)
class Stage:
    """One fine-tuning stage and the probes measured after it."""

    index: int  # 1-based position in the study
    cycle: int
    task: str  # the task fine-tuned in this stage
    probes: tuple[tuple[str, str], ...]  # (probed task, results.json metric name)

    @property
    def folder(self) -> str:
        return f"{self.index:02d}-{self.task}"


def plan_stages(cfg: ProbingConfig) -> list[Stage]:
    """The study's stages, in order (see the module docstring)."""
    if cfg.study == "generalization":
        return [Stage(1, 1, cfg.source_task, tuple((t, f"probe_{t}") for t in cfg.probe_tasks))]
    if cfg.study == "degradation":
        source = cfg.chain[0]
        return [Stage(i + 1, 1, t, ((source, f"probe_after_{t}"),)) for i, t in enumerate(cfg.chain)]
    stages: list[Stage] = []
    n = len(cfg.chain)
    for c in range(1, cfg.cycles + 1):
        for i, task in enumerate(cfg.chain):
            nxt = cfg.chain[(i + 1) % n]
            stages.append(Stage(len(stages) + 1, c, task, ((nxt, f"probe_c{c}_{nxt}"),)))
    return stages


@dataclass
class StudyOutcome:
    """What a study measured: the metrics for results.json and one record per stage."""

    metrics: dict[str, float]
    stages: list[dict[str, Any]]
    probe_order: list[tuple[str, str]]  # (metric name, x-axis label), in the figure's order
    seconds: float


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    # atomic: a stage is done exactly when its stage.json exists
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False))


def _encoder_file(cfg: ProbingConfig, stage: Stage) -> Path:
    return Path(cfg.output_dir) / "stages" / stage.folder / "encoder.safetensors"


def _tokenized_dev(data: GlueData, tokenized: Mapping[str, Any]) -> Any:
    return tokenized["dev"][data.task.dev_splits[0][0]]  # the selection split (MNLI: matched)


def run_study(cfg: ProbingConfig, log: Callable[[str], None] = print) -> StudyOutcome:
    """Run every stage of the study (resuming after the last finished one) and probe after each."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import DataCollatorWithPadding

    start = time.perf_counter()
    stages = plan_stages(cfg)
    data = {t: glue.load_glue_data(stage_config(cfg, t, 0)) for t in cfg.tasks()}
    texts = [text for t in cfg.tasks() for text in data[t].texts()]  # one tokenizer for every task (tiny models)
    records: list[dict[str, Any]] = []
    encoder_state: dict[str, torch.Tensor] | None = None
    tokenizer = None
    tokenized: dict[str, Any] = {}
    for k, stage in enumerate(stages):
        done = Path(cfg.output_dir) / "stages" / stage.folder / "stage.json"
        if done.is_file():
            records.append(json.loads(done.read_text(encoding="utf-8")))
            log(f"stage {stage.index}/{len(stages)} {stage.task}: done earlier (resumed)")
            continue
        if k > 0 and encoder_state is None:  # resuming: the encoder of the last finished stage
            encoder_state = load_file(str(_encoder_file(cfg, stages[k - 1])))
        run_cfg = stage_config(cfg, stage.task, stage.index)
        task_data = data[stage.task]
        model, stage_tokenizer = glue.build_glue_model(run_cfg, task_data.task.num_labels, texts)
        tokenizer = tokenizer or stage_tokenizer  # tiny models: identical (same texts); pretrained: the same
        if encoder_state is not None:  # previous stage's best checkpoint; the head stays fresh
            encoder_of(model).load_state_dict(encoder_state)
        for t in (stage.task, *(p for p, _ in stage.probes)):
            if t not in tokenized:
                tokenized[t] = glue.tokenize_glue(data[t], tokenizer, run_cfg)
        trainer = glue.build_glue_trainer(run_cfg, model, tokenizer, task_data, tokenized[stage.task])
        summary = glue.train_with_resume(trainer, run_cfg)
        dev = glue.evaluate_glue(trainer, task_data, tokenized[stage.task])
        collate = DataCollatorWithPadding(tokenizer)
        probes: dict[str, Any] = {}
        for probe_task, name in stage.probes:
            spec = data[probe_task].task
            result = probe_encoder(model, tokenized[probe_task]["train"],
                                   _tokenized_dev(data[probe_task], tokenized[probe_task]), collate,
                                   num_labels=spec.num_labels, metrics=[spec.best_metric], cfg=cfg.probe)
            probes[name] = {"task": probe_task, "metric": spec.best_metric, "value": result.metrics[spec.best_metric],
                            "majority": result.majority, "num_train": result.num_train, "num_eval": result.num_eval,
                            "final_train_loss": result.train_losses[-1], "seconds": result.seconds,
                            "learning_rate": result.learning_rate, "selection": result.selection}
        record = {"index": stage.index, "cycle": stage.cycle, "task": stage.task, "dev": dev,
                  "train": {k2: summary.get(k2) for k2 in ("global_step", "best_checkpoint", "seconds",
                                                          "last_train_loss", "resumed_from")},
                  "probes": probes}
        encoder_state = {n: t.detach().cpu().contiguous().clone() for n, t in encoder_of(model).state_dict().items()}
        if k + 1 < len(stages):  # the next stage starts from this one (also after an interruption)
            save_file(encoder_state, str(_encoder_file(cfg, stage)))
        _write_json(done, record)
        glue.remove_checkpoints(run_cfg)
        if k > 0 and not run_cfg.keep_checkpoints:
            _encoder_file(cfg, stages[k - 1]).unlink(missing_ok=True)
        records.append(record)
        shown = ", ".join(f"{p['task']} probe {p['value']:.1f}" for p in probes.values())
        log(f"stage {stage.index}/{len(stages)} {stage.task}: dev {dev} | {shown}")
        del trainer, model
    return StudyOutcome(metrics=_study_metrics(cfg, records), stages=records, probe_order=_probe_order(stages),
                        seconds=round(time.perf_counter() - start, 2))


def _probe_order(stages: Sequence[Stage]) -> list[tuple[str, str]]:
    order: list[tuple[str, str]] = []
    for stage in stages:
        for task, name in stage.probes:
            if name.startswith("probe_after_"):
                label = f"after {stage.task}"
            elif re.fullmatch(r"probe_c\d+_\w+", name):
                label = f"c{stage.cycle} {stage.task}→{task}"
            else:
                label = task
            order.append((name, label))
    return order


def _study_metrics(cfg: ProbingConfig, records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    metrics = {name: float(p["value"]) for r in records for name, p in r["probes"].items()}
    values = list(metrics.values())
    if cfg.study == "degradation":
        first, last = values[0], values[-1]
        metrics["probe_final"] = last
        metrics["probe_drop"] = first - last
    else:
        metrics["probe_mean"] = math.fsum(values) / len(values)
    return metrics


def run_extra(cfg: ProbingConfig, outcome: StudyOutcome, figures: Sequence[str] = ()) -> dict[str, Any]:
    """What results.json keeps besides the metrics: the study, per-stage records, the figures' files."""
    return {"study": cfg.study, "method": cfg.method, "stages": outcome.stages,
            "probe_order": [list(p) for p in outcome.probe_order], "seconds": outcome.seconds,
            "figures": list(figures)}


def remove_stage_files(cfg: ProbingConfig) -> None:
    """Delete the stage folders' encoder weights once results.json is written, unless ``keep_checkpoints``."""
    if cfg.stage_params.get("keep_checkpoints"):
        return
    for path in (Path(cfg.output_dir) / "stages").glob("*/encoder.safetensors"):
        path.unlink()
