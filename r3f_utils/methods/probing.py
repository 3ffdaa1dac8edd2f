"""Probing a frozen encoder: the measurement behind the paper's representational-collapse figures (3-5).

The paper "follow[s] probing methodology by first freezing the representations from the model trained on one
task and then fine-tuning a linear layer on top of the model for another task". The early official criterion
had ``--freeze-encoder``: "Freeze encoder weights and disable encoder dropout during training". Read
literally, that is:

* the whole encoder (``model.base_model``: embeddings and every layer) is frozen, in ``eval()`` mode (dropout
  off) and run under ``torch.no_grad()``;
* a fresh probe is trained on its final ``<s>`` (BERT: ``[CLS]``) state, the input of fairseq's
  classification head. ``head="linear"`` (default, the paper's "a linear layer") is one ``nn.Linear(d,
  n_labels)``; ``head="full_head"`` is fairseq's ``RobertaClassificationHead`` shape (dropout, dense d x d,
  tanh, dropout, out_proj), a named option because which one the authors used is not published.

Because the encoder is frozen and dropout is off, its features are a fixed function of the input: they are
computed once (:func:`extract_features`) and the probe is fit on the cache with its own short training loop
(:func:`fit_probe`). That is exactly equivalent to training the probe on top of the frozen model, and much
cheaper. The encoder's parameters are never touched (a test checks they are bit-identical afterwards).

So that feature *scale* cannot pass for feature *quality* (R4F's spectral norm and the other methods leave
features of different magnitudes, and one fixed learning rate suits some scales better than others), the
features are standardised with the mean and standard deviation of the probe's training split
(``standardize``), and the probe's learning rate is chosen from ``learning_rate_grid`` on a held-out part of the
probe's training data (``holdout_fraction``), never on the reported dev split
(:func:`select_learning_rate`); the probe is then refit on the whole training split with the chosen rate.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = [
    "POOLINGS",
    "PROBE_HEADS",
    "FullHead",
    "ProbeConfig",
    "ProbeResult",
    "build_probe",
    "check_probe_inputs",
    "encoder_of",
    "extract_features",
    "fit_probe",
    "frozen",
    "majority_baseline",
    "probe_encoder",
    "select_learning_rate",
    "standardizer",
]

PROBE_HEADS = ("linear", "full_head")
POOLINGS = ("first", "mean")


@dataclass(frozen=True)
class ProbeConfig:
    """How a probe is trained. The paper's probe hyper-parameters are NOT FOUND; these defaults are ours."""

    head: str = "linear"  # linear (the paper's "a linear layer") | full_head (fairseq's classification head shape)
    pooling: str = "first"  # first: the final <s>/[CLS] state (fairseq's head input) | mean: mean over tokens
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 32
    weight_decay: float = 0.0
    dropout: float = 0.1  # full_head only (the linear probe has no dropout)
    feature_batch_size: int = 64  # examples per forward pass of the frozen encoder
    max_train_samples: int | None = None  # keep the first N training examples of the probed task
    bf16: bool = False  # run the frozen encoder under bf16 autocast on a GPU (features are stored in float32)
    seed: int = 0
    standardize: bool = True  # z-score the features with the probe's training split (fit on the fit part only)
    learning_rate_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2)  # chosen on held-out training data; () = learning_rate
    holdout_fraction: float = 0.2  # share of the probe's training split held out to choose the learning rate

    def __post_init__(self) -> None:
        def check(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"probe parameter {name}={getattr(self, name)!r} is invalid: {allowed}")

        check(self.head in PROBE_HEADS, "head", f"choose one of {list(PROBE_HEADS)}")
        check(self.pooling in POOLINGS, "pooling", f"choose one of {list(POOLINGS)}")
        check(isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0, "learning_rate",
              "a positive number")
        for name in ("epochs", "batch_size", "feature_batch_size"):
            value = getattr(self, name)
            check(isinstance(value, int) and not isinstance(value, bool) and value > 0, name, "a positive integer")
        check(self.max_train_samples is None or (isinstance(self.max_train_samples, int)
                                                 and self.max_train_samples > 0),
              "max_train_samples", "None or a positive integer")
        for name in ("weight_decay", "dropout"):  # a string here would fail only at training, or compare oddly
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), name,
                  "a number")
        check(self.weight_decay >= 0, "weight_decay", "a non-negative number")
        check(0 <= self.dropout < 1, "dropout", "a fraction in [0, 1)")
        check(isinstance(self.standardize, bool), "standardize", "True or False")
        grid = self.learning_rate_grid
        check(isinstance(grid, (tuple, list)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in grid),
            "learning_rate_grid", "a list of positive numbers (empty: no selection, use learning_rate)")
        object.__setattr__(self, "learning_rate_grid", tuple(float(v) for v in grid))
        check(isinstance(self.holdout_fraction, (int, float)) and 0 < self.holdout_fraction < 1,
              "holdout_fraction", "a fraction in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings for results.json."""
        return asdict(self)


def encoder_of(model: nn.Module) -> nn.Module:
    """The encoder a probe reads: ``model.base_model`` of a Hugging Face sequence classifier (RobertaModel,
    BertModel, ...), i.e. everything except the task head."""
    base = getattr(model, "base_model", None)
    if base is model and getattr(model, "config", None) is not None:  # a bare encoder (RobertaModel, BertModel)
        return model
    if base is None or base is model:
        raise ValueError(f"{type(model).__name__} has no base_model (it is not a Hugging Face model) to probe: pass "
                         "a *ForSequenceClassification model or its bare encoder (e.g. RobertaModel)")
    return base


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Freeze ``module`` (``requires_grad=False``, ``eval()``: dropout off) for the block; restore its flags and
    train/eval modes afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    modes = [(m, m.training) for m in module.modules()]
    for p, _ in flags:
        p.requires_grad_(False)
    module.eval()
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.train(mode)


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "first":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def extract_features(
    encoder: nn.Module,
    examples: Sequence[Mapping[str, Any]],
    collate: Any,
    *,
    pooling: str = "first",
    batch_size: int = 64,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [N, d] float32, labels [N])`` of tokenized ``examples`` through the frozen ``encoder``.

    ``examples`` is a sequence of dicts with ``input_ids`` (and ``attention_mask``, ``label``), e.g. a
    tokenized ``datasets.Dataset``; ``collate`` pads a list of them into tensors
    (``transformers.DataCollatorWithPadding``). The encoder runs frozen, in eval mode, without gradients.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is invalid: choose one of {list(POOLINGS)}")
    device = next(encoder.parameters()).device
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16 and device.type == "cuda"
                else contextlib.nullcontext())
    with frozen(encoder), torch.no_grad(), autocast:
        for start in range(0, len(examples), batch_size):
            batch = collate([examples[i] for i in range(start, min(start + batch_size, len(examples)))])
            labels.append(torch.as_tensor(batch.pop("labels", batch.pop("label", None))))
            inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask",
                                                                         "token_type_ids")}
            hidden = encoder(**inputs).last_hidden_state
            mask = inputs.get("attention_mask", torch.ones(hidden.shape[:2], device=device))
            feats.append(_pool(hidden, mask, pooling).float())
    return torch.cat(feats), torch.cat(labels)


class FullHead(nn.Module):
    """fairseq's ``RobertaClassificationHead`` shape on a pooled feature: dropout, dense (d x d), tanh, dropout,
    out_proj (the option ``head="full_head"``)."""

    def __init__(self, dim: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(x)))))


def build_probe(cfg: ProbeConfig, dim: int, num_labels: int) -> nn.Module:
    """A fresh probe (seeded by ``cfg.seed``): ``nn.Linear(dim, num_labels)`` or :class:`FullHead`
    (``num_labels=1``: a regression probe)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return nn.Linear(dim, num_labels) if cfg.head == "linear" else FullHead(dim, num_labels, cfg.dropout)


def fit_probe(
    probe: nn.Module, features: torch.Tensor, labels: torch.Tensor, cfg: ProbeConfig
) -> list[float]:
    """Train ``probe`` on cached features: AdamW, ``cfg.epochs`` epochs of shuffled mini-batches (seeded),
    cross-entropy (MSE for a 1-output regression probe), no schedule. Returns the mean loss of each epoch."""
    regression = _out_features(probe) == 1
    device = features.device
    probe.to(device).train()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    targets = labels.to(device).float() if regression else labels.to(device).long()
    losses: list[float] = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(features), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            out = probe(features[idx])
            loss = (nn.functional.mse_loss(out.squeeze(-1), targets[idx]) if regression
                    else nn.functional.cross_entropy(out, targets[idx]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / max(1, len(order)))
    probe.eval()
    return losses


def standardizer(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` per feature of ``features`` (population std, floored at 1e-6 for constant features)."""
    return features.mean(0), features.std(0, unbiased=False).clamp_min(1e-6)


def _scaled(features: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    return features if stats is None else (features - stats[0]) / stats[1]


def _score(probe: nn.Module, features: torch.Tensor, labels: torch.Tensor, metric: str) -> float:
    from r3f_utils.metrics import compute_metrics_for, predictions_from_logits

    with torch.no_grad():
        logits = probe(features).float().cpu().numpy()
    predictions = predictions_from_logits(logits, regression=_out_features(probe) == 1)
    value = compute_metrics_for([metric], predictions, labels.cpu().numpy())[metric]
    return float(value) if math.isfinite(value) else -math.inf


def select_learning_rate(features: torch.Tensor, labels: torch.Tensor, num_labels: int, metric: str,
                         cfg: ProbeConfig) -> tuple[float, dict[str, Any]]:
    """The probe learning rate of ``cfg.learning_rate_grid`` with the best ``metric`` on a held-out part of the
    probe's training data (a seeded ``holdout_fraction`` of it; the standardisation is fit on the rest).

    Returns ``(learning rate, record)``; ties go to the first rate of the grid. With fewer than two training
    examples, or an empty grid, ``cfg.learning_rate`` is kept.
    """
    n = len(features)
    if not cfg.learning_rate_grid or n < 2:
        return cfg.learning_rate, {"learning_rate": cfg.learning_rate, "grid": list(cfg.learning_rate_grid),
                                   "selected_on": None}
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    held = min(n - 1, max(1, round(cfg.holdout_fraction * n)))
    fit_idx, hold_idx = order[held:].to(features.device), order[:held].to(features.device)
    stats = standardizer(features[fit_idx]) if cfg.standardize else None
    x_fit, x_hold = _scaled(features[fit_idx], stats), _scaled(features[hold_idx], stats)
    scores: dict[str, float] = {}
    for lr in cfg.learning_rate_grid:
        probe = build_probe(cfg, features.shape[1], num_labels)
        fit_probe(probe, x_fit, labels[fit_idx], _with_lr(cfg, lr))
        scores[repr(lr)] = 100.0 * _score(probe, x_hold, labels[hold_idx], metric)
    best = max(cfg.learning_rate_grid, key=lambda lr: (scores[repr(lr)], -cfg.learning_rate_grid.index(lr)))
    return best, {"learning_rate": best, "grid": list(cfg.learning_rate_grid), "metric": metric,
                  "holdout_scores": scores, "num_fit": n - held, "num_holdout": held,
                  "selected_on": "held-out part of the probe's training split"}


def _with_lr(cfg: ProbeConfig, lr: float) -> ProbeConfig:
    from dataclasses import replace

    return replace(cfg, learning_rate=lr)


def _out_features(probe: nn.Module) -> int:
    last = [m for m in probe.modules() if isinstance(m, nn.Linear)][-1]
    return last.out_features


def majority_baseline(labels: Sequence[int] | torch.Tensor) -> float:
    """Accuracy x100 of always predicting the most frequent label (what a probe must beat)."""
    values = torch.as_tensor(labels).long()
    if values.numel() == 0:
        return math.nan
    return 100.0 * values.bincount().max().item() / values.numel()


@dataclass
class ProbeResult:
    """One probe: its dev metrics (percent), the training curve and what it was trained on."""

    metrics: dict[str, float]
    train_losses: list[float]
    num_train: int
    num_eval: int
    majority: float | None  # majority-class dev accuracy x100 (None for regression)
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    probe: nn.Module | None = None
    learning_rate: float | None = None  # the probe learning rate used (chosen on held-out training data)
    selection: dict[str, Any] = field(default_factory=dict)  # how it was chosen (grid, held-out scores)
    feature_stats: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, std) the probe's inputs were scaled by


def check_probe_inputs(train: Sequence[Mapping[str, Any]], dev: Sequence[Mapping[str, Any]], *, num_labels: int,
                       cfg: ProbeConfig) -> None:
    """ValueError, before anything is computed, naming the split, the example and the field: empty splits,
    examples without ``input_ids`` or ``label``, labels outside ``0..num_labels-1``, a ``cfg`` that is no
    :class:`ProbeConfig`."""
    if not isinstance(cfg, ProbeConfig):
        raise ValueError(f"cfg must be a ProbeConfig, not {type(cfg).__name__}: ProbeConfig(**your_settings)")
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer (1 for regression), not {num_labels!r}")
    for split, examples in (("train", train), ("dev", dev)):
        if len(examples) == 0:
            raise ValueError(f"probe_encoder: the {split} split is empty")
        columns = getattr(examples, "column_names", None)
        if columns is not None:  # a datasets.Dataset: whole columns, not one example at a time
            fields = [(0, set(columns))]
            labels = list(examples["label"]) if "label" in columns else []
        else:
            fields = [(i, set(examples[i])) for i in range(len(examples))]
            labels = [examples[i].get("label") for i in range(len(examples))]
        for i, keys in fields:
            for key in ("input_ids", "label"):
                if key not in keys:
                    raise ValueError(f"probe_encoder: {split} example {i} has no {key!r} (it has {sorted(keys)}): "
                                     "pass tokenized examples with a 'label' field")
        if num_labels == 1:
            continue  # regression: any number
        for i, label in enumerate(labels):
            label = label.item() if hasattr(label, "item") else label
            if isinstance(label, bool) or not isinstance(label, numbers.Integral) or not 0 <= label < num_labels:
                raise ValueError(f"probe_encoder: {split} example {i} has label {label!r}, outside 0..{num_labels - 1} "
                                 f"(num_labels={num_labels}); unlabeled test splits carry -1: probe on labeled splits")


def probe_encoder(
    model: nn.Module,
    train: Sequence[Mapping[str, Any]],
    dev: Sequence[Mapping[str, Any]],
    collate: Any,
    *,
    num_labels: int,
    metrics: Sequence[str],
    cfg: ProbeConfig = ProbeConfig(),
) -> ProbeResult:
    """Freeze ``model``'s encoder, train a fresh probe on ``train`` and report ``metrics`` on ``dev``.

    ``train``/``dev`` are tokenized examples (``input_ids``, ``attention_mask``, ``label``); ``metrics`` are
    :mod:`r3f_utils.metrics` names (returned x100, as the paper prints them). The model is left exactly as it
    was: parameters, ``requires_grad`` flags and train/eval modes.
    """
    from r3f_utils.metrics import compute_metrics_for, predictions_from_logits

    start = time.perf_counter()
    check_probe_inputs(train, dev, num_labels=num_labels, cfg=cfg)
    encoder = encoder_of(model)
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train):
        train = [train[i] for i in range(cfg.max_train_samples)]
    x_train, y_train = extract_features(encoder, train, collate, pooling=cfg.pooling,
                                        batch_size=cfg.feature_batch_size, bf16=cfg.bf16)
    x_dev, y_dev = extract_features(encoder, dev, collate, pooling=cfg.pooling,
                                    batch_size=cfg.feature_batch_size, bf16=cfg.bf16)
    learning_rate, selection = select_learning_rate(x_train, y_train, num_labels, metrics[0], cfg)
    stats = standardizer(x_train) if cfg.standardize else None  # fit on the probe's training split only
    x_train, x_dev = _scaled(x_train, stats), _scaled(x_dev, stats)
    probe = build_probe(cfg, x_train.shape[1], num_labels)
    losses = fit_probe(probe, x_train, y_train, _with_lr(cfg, learning_rate))
    with torch.no_grad():
        logits = probe(x_dev).float().cpu().numpy()
    regression = num_labels == 1
    predictions = predictions_from_logits(logits, regression=regression)
    values = compute_metrics_for(metrics, predictions, y_dev.cpu().numpy())
    return ProbeResult(
        metrics={name: 100.0 * v for name, v in values.items()},
        train_losses=losses,
        num_train=len(x_train),
        num_eval=len(x_dev),
        majority=None if regression else majority_baseline(y_dev),
        seconds=round(time.perf_counter() - start, 3),
        config=cfg.to_dict(),
        probe=probe,
        learning_rate=learning_rate,
        selection=selection,
        feature_stats=stats,
    )
