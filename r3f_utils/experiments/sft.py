"""The steps of ``notebooks/sft.ipynb`` (beyond the paper: does R3F's KL add anything over NEFTune?), one call each.

resolve config → load data (instruction sets, held-out validation/test cut by seed) → build model (LoRA or full)
→ build an :class:`r3f_utils.R3FSFTTrainer` → train (resume; best checkpoint by validation loss) → held-out loss
and perplexity over the completion tokens → greedy generation on test prompts, token F1 → results.json.

Methods: ``standard`` (SFT, completion-only loss), ``neftune`` (TRL's ``neftune_noise_alpha``: NEFTune, Jain et
al. 2023), ``r3f`` (R3F with the paper's uniform noise), ``r3f_neftune`` (R3F's KL with NEFTune's noise on the
noised pass); ``finetuning`` = ``lora`` (PEFT LoRA adapters, base frozen) or ``full``. R4F is refused (no
classification head in a causal LM).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers import set_seed as hf_set_seed

from r3f_utils.constants import PROFILES
from r3f_utils.data.sft import SFT_DATASETS, SFTDataset
from r3f_utils.experiments import checkpoints
from r3f_utils.models import configure_threads
from r3f_utils.package_data import fixtures_dir
from r3f_utils.params import SftParams, resolve
from r3f_utils.params import check_parameter as _check
from r3f_utils.tiny_models import TINY_ARCHITECTURES, build_tiny_model

__all__ = [
    "FIXTURES",
    "SFT_DATASETS",
    "SFT_METHODS",
    "SFTData",
    "SFTDataset",
    "SFTRunConfig",
    "build_sft_model",
    "build_sft_trainer",
    "evaluate_heldout",
    "format_example",
    "generate_completions",
    "load_sft_data",
    "remove_checkpoints",
    "resolve_sft_config",
    "run_extra",
    "score_generations",
    "token_f1",
    "train_with_resume",
]

SFT_METHODS = ("standard", "neftune", "r3f", "r3f_neftune")
FINETUNING = ("lora", "full")
FIXTURES = "fixtures"  # data_dir value meaning tests/fixtures/sft of this repository


# the Alpaca prompt (Taori et al. 2023), used for both datasets; the answer is the completion (+ EOS, by TRL)
_PROMPT_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                      "context. Write a response that appropriately completes the request.\n\n"
                      "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
_PROMPT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


@dataclass
class SFTRunConfig:
    """Every setting of one run; field names = notebook parameter names = registry parameter names."""

    dataset: str
    method: str
    finetuning: str
    model_name: str
    learning_rate: float
    max_updates: int
    warmup_updates: int = 0
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    eval_batch_size: int = 8
    max_length: int = 512  # tokens per example (prompt + completion), TRL's max_length
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    neftune_alpha: float = 5.0  # NEFTune's alpha (neftune, r3f_neftune)
    neftune_length: str = "padded"  # r3f_neftune: "padded" = the neftune method's noise (TRL's hook); "real"
    eps: float = 1.0e-5  # r3f: U(-eps, eps)
    r3f_lambda: float = 1.0
    kl_reduction: str = "per_sequence"  # R3FConfig.seq2seq_kl
    eval_steps: int | None = None  # validation loss + checkpoint every N updates; None: once, at the end
    validation_size: int = 8  # held-out examples cut from the training split (seeded)
    test_size: int = 8
    split_seed: int = 0
    max_train_samples: int | None = None
    generation_samples: int = 4  # test prompts answered greedily for token F1
    max_new_tokens: int = 16
    data_dir: str | None = None  # None: the Hub; FIXTURES: tests/fixtures/sft; else a folder of <dataset>/
    bf16: bool = False
    gradient_checkpointing: bool = False
    keep_checkpoints: bool = False
    report_to: str = "none"  # the Trainer's integrations: none | tensorboard | wandb | all | a comma-separated list
    seed: int = 0
    output_dir: str = "runs/notebook"
    profile: str = "smoke"
    experiment: str = ""

    @property
    def checkpoint_dir(self) -> Path:
        """Where the trainer keeps checkpoints (resume and best-checkpoint selection)."""
        return Path(self.output_dir) / "checkpoints"

    @property
    def data_source(self) -> str:
        """What ``datasets.load_dataset`` reads: the Hub id, or ``<data_dir>/<dataset>`` (same call)."""
        return SFT_DATASETS[self.dataset].hub_id if self.data_dir is None else str(Path(self.data_dir) / self.dataset)

    def r3f_config(self) -> Any:
        """:class:`r3f_utils.R3FConfig` for ``r3f`` / ``r3f_neftune``, None for ``standard`` / ``neftune``."""
        if self.method not in ("r3f", "r3f_neftune"):
            return None
        from r3f_utils import R3FConfig

        noise = ({"noise_type": "neftune", "neftune_alpha": self.neftune_alpha, "neftune_length": self.neftune_length}
                 if self.method == "r3f_neftune" else {"noise_type": "uniform", "eps": self.eps})
        return R3FConfig(r3f_lambda=self.r3f_lambda, seq2seq_kl=self.kl_reduction, **noise)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters for results.json."""
        return asdict(self)


def _validate(cfg: SFTRunConfig) -> SFTRunConfig:
    if cfg.method == "r4f":
        from r3f_utils.methods.sft import refuse_r4f

        refuse_r4f(cfg.model_name)  # the method layer's message: no classification head in a causal LM
    _check(cfg.method in SFT_METHODS, "method", cfg.method, f"choose one of {list(SFT_METHODS)}")
    _check(cfg.dataset in SFT_DATASETS, "dataset", cfg.dataset, f"choose one of {sorted(SFT_DATASETS)}")
    _check(cfg.finetuning in FINETUNING, "finetuning", cfg.finetuning, f"choose one of {list(FINETUNING)}")
    _check(cfg.profile in PROFILES, "profile", cfg.profile, f"choose one of {list(PROFILES)}")
    _check(cfg.neftune_length in ("padded", "real"), "neftune_length", cfg.neftune_length, "'padded' or 'real'")
    _check(cfg.kl_reduction in ("per_sequence", "per_token"), "kl_reduction", cfg.kl_reduction,
           "'per_sequence' (fairseq's seq2seq criterion) or 'per_token'")
    for name in ("learning_rate", "eps", "neftune_alpha"):
        value = getattr(cfg, name)
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, name, value,
               "a positive number")
    for name in ("max_updates", "batch_size", "gradient_accumulation_steps", "eval_batch_size", "max_length",
                 "lora_r", "test_size", "validation_size", "generation_samples", "max_new_tokens"):
        value = getattr(cfg, name)
        _check(isinstance(value, int) and not isinstance(value, bool) and value > 0, name, value, "a positive integer")
    for name in ("eval_steps", "max_train_samples"):
        value = getattr(cfg, name)
        _check(value is None or (isinstance(value, int) and value > 0), name, value, "None or a positive integer")
    _check(isinstance(cfg.warmup_updates, int) and 0 <= cfg.warmup_updates <= cfg.max_updates, "warmup_updates",
           cfg.warmup_updates, f"an integer in [0, max_updates={cfg.max_updates}]")
    _check(cfg.r3f_lambda >= 0, "r3f_lambda", cfg.r3f_lambda, "a non-negative number")
    _check(cfg.generation_samples <= cfg.test_size, "generation_samples", cfg.generation_samples,
           f"at most test_size={cfg.test_size}")
    if cfg.profile == "paper":
        _check(cfg.model_name not in TINY_ARCHITECTURES, "model_name", cfg.model_name,
               "the paper profile needs a pretrained model (Qwen/Qwen2.5-0.5B), not a tiny smoke model")
        _check(cfg.data_dir != FIXTURES, "data_dir", cfg.data_dir,
               "the paper profile needs the real data: None (the Hub) or a folder with the full files")
    if cfg.data_dir == FIXTURES:
        path = fixtures_dir("sft")
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir={FIXTURES!r} means the smoke fixtures in {path}, which do not exist "
                                    "(an install without package data): pass data_dir=<your folder> or None")
        cfg.data_dir = str(path)
    return cfg


def resolve_sft_config(**params: Any) -> SFTRunConfig:
    """Build and validate the run's :class:`SFTRunConfig` from the notebook's parameters.

    Unknown names raise TypeError (papermill only warns); invalid values raise ValueError naming them. Parameters
    not given take :class:`SFTRunConfig`'s defaults (the notebook's, :class:`r3f_utils.params.SftParams`, are the
    smoke profile's).
    """
    resolve(SftParams, params)  # names and types: the notebook's parameters (r3f_utils.params.SftParams)
    if params.get("output_dir") is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        params["output_dir"] = f"runs/notebook/sft-{params.get('finetuning')}-{params.get('method')}-{stamp}"
    return _validate(SFTRunConfig(**params))


def format_example(record: Mapping[str, Any], spec: SFTDataset) -> dict[str, str]:
    """``{"prompt", "completion"}`` of one record: the Alpaca prompt around its instruction (and input), the
    answer as the completion (a leading space-free string; TRL appends EOS)."""
    instruction, extra = str(record[spec.instruction]).strip(), str(record.get(spec.input) or "").strip()
    prompt = (_PROMPT_WITH_INPUT.format(instruction=instruction, input=extra) if extra
              else _PROMPT.format(instruction=instruction))
    return {"prompt": prompt, "completion": str(record[spec.output]).strip()}


@dataclass
class SFTData:
    """The three splits of a run, each with ``prompt`` and ``completion`` columns."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset

    def texts(self) -> list[str]:
        """Training prompts and completions (to train a tiny smoke model's tokenizer)."""
        return [*self.train["prompt"], *self.train["completion"]]

    def sizes(self) -> dict[str, int]:
        """Examples per split."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def load_sft_data(cfg: SFTRunConfig) -> SFTData:
    """Train / validation / test as prompt-completion pairs. Both datasets publish one ``train`` split: the
    held-out validation and test examples are cut from it with ``split_seed``; the Hub and a local folder go
    through the same ``datasets.load_dataset(source, split="train")`` call."""
    spec = SFT_DATASETS[cfg.dataset]
    raw = datasets.load_dataset(cfg.data_source, split="train")
    missing = [f for f in (spec.instruction, spec.output) if f not in raw.column_names]
    if missing:
        raise ValueError(f"{cfg.data_source}: no field(s) {missing} (columns: {raw.column_names}); dataset="
                         f"{cfg.dataset!r} expects {spec.instruction}/{spec.input}/{spec.output}")
    held_out = cfg.validation_size + cfg.test_size
    if len(raw) <= held_out:
        raise ValueError(f"{cfg.data_source} has {len(raw)} examples: fewer than validation_size + test_size + 1")
    data = raw.map(lambda r: format_example(r, spec), remove_columns=raw.column_names, keep_in_memory=True)
    cut = data.train_test_split(test_size=held_out, seed=cfg.split_seed, shuffle=True)
    train, rest = cut["train"], cut["test"]
    if cfg.max_train_samples is not None:
        train = train.select(range(min(cfg.max_train_samples, len(train))))
    return SFTData(train, rest.select(range(cfg.validation_size)),
                   rest.select(range(cfg.validation_size, held_out)))


def build_sft_model(cfg: SFTRunConfig, texts: Sequence[str] = ()) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Seed everything and load the causal LM and its tokenizer with ``from_pretrained``.

    A ``tiny-*`` smoke model is built locally (its tokenizer trained on ``texts``), saved under the checkpoints and
    loaded back through the same ``from_pretrained`` call a Hub id takes. LoRA adapters are added by the
    trainer (:func:`build_sft_trainer`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    configure_threads(cfg.model_name)
    hf_set_seed(cfg.seed)
    source = cfg.model_name
    if cfg.model_name in TINY_ARCHITECTURES:
        if TINY_ARCHITECTURES[cfg.model_name][1] != "causal_lm":
            raise ValueError(f"{cfg.model_name} is not a causal LM; the sft family needs one (tiny-llama)")
        model, tokenizer = build_tiny_model(cfg.model_name, texts=texts, seed=cfg.seed, dropout=0.0)
        source = str(cfg.checkpoint_dir / "initial-model")  # removed with the checkpoints
        model.save_pretrained(source)
        tokenizer.save_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:  # Llama 3: no pad token; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if cfg.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return model, tokenizer


def build_sft_trainer(cfg: SFTRunConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                      data: SFTData) -> Any:
    """An :class:`r3f_utils.R3FSFTTrainer` (``r3f=None`` for standard/neftune; LoRA through ``peft_config``)."""
    from trl import SFTConfig

    from r3f_utils.methods.sft import R3FSFTTrainer

    eval_steps = min(cfg.eval_steps or cfg.max_updates, cfg.max_updates)
    shared = checkpoints.checkpointed_run_arguments(cfg.checkpoint_dir, eval_steps=eval_steps, seed=cfg.seed,
                                                    fp16=False, bf16=cfg.bf16, profile=cfg.profile,
                                                    report_to=cfg.report_to)
    shared["lr_scheduler_type"], shared["lr_scheduler_kwargs"] = "cosine", {}  # the usual SFT schedule
    args = SFTConfig(
        **shared,
        max_steps=cfg.max_updates,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_updates,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_length=cfg.max_length,
        completion_only_loss=True,
        neftune_noise_alpha=cfg.neftune_alpha if cfg.method == "neftune" else None,
        gradient_checkpointing=cfg.gradient_checkpointing,
        metric_for_best_model="loss",
        greater_is_better=False,
    )
    peft_config = None
    if cfg.finetuning == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")
    return R3FSFTTrainer(model=model, args=args, r3f=cfg.r3f_config(), train_dataset=data.train,
                         eval_dataset=data.validation, processing_class=tokenizer, peft_config=peft_config)


def train_with_resume(trainer: Any, cfg: SFTRunConfig) -> dict[str, Any]:
    """Train (resuming an interrupted run); the checkpoint with the lowest validation loss is loaded at the end.
    Adds the mean ``symm_kl`` of the run's logs (R3F methods) and the trainable parameter count."""
    summary = checkpoints.train_with_resume(trainer, cfg.checkpoint_dir, best_metric_key="best_validation_loss")
    kls = [e["symm_kl"] for e in trainer.state.log_history if "symm_kl" in e]
    summary["mean_symm_kl"] = sum(kls) / len(kls) if kls else None
    summary["trainable_parameters"] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return summary


def _completion_example(tokenizer: PreTrainedTokenizerBase, prompt: str, completion: str,
                        max_length: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` as TRL's SFTTrainer builds them for a prompt-completion pair: EOS appended to the
    completion, prompt and prompt + completion tokenized, the completion starting where the two diverge; labels
    -100 on the prompt; truncated to ``max_length``."""
    eos = tokenizer.eos_token or ""
    text = completion if completion.endswith(eos) else completion + eos
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(prompt + text)["input_ids"]
    start = next((i for i, (a, b) in enumerate(zip(prompt_ids, ids, strict=False)) if a != b),
                 min(len(prompt_ids), len(ids)))
    labels = [-100] * start + ids[start:]
    return ids[:max_length], labels[:max_length]


@torch.no_grad()
def evaluate_heldout(trainer: Any, data: SFTData, cfg: SFTRunConfig) -> dict[str, float]:
    """Held-out (test) loss per completion token (natural log; prompts and padding excluded; summed over the
    whole split, then divided by its completion tokens) and its perplexity. Examples are tokenized as TRL's
    SFTTrainer does for training (:func:`_completion_example`)."""
    model, tokenizer = trainer.model, trainer.processing_class
    model.eval()
    device = next(model.parameters()).device
    pairs = [_completion_example(tokenizer, p, c, cfg.max_length)
             for p, c in zip(data.test["prompt"], data.test["completion"], strict=True)]
    total, tokens = 0.0, 0
    for start in range(0, len(pairs), cfg.eval_batch_size):
        chunk = pairs[start:start + cfg.eval_batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in chunk], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=device)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        targets = labels[:, 1:]
        total += float(torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets,
                                                         ignore_index=-100, reduction="sum"))
        tokens += int(targets.ne(-100).sum())
    loss = total / max(tokens, 1)
    return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0))}


@torch.no_grad()
def generate_completions(trainer: Any, data: SFTData, cfg: SFTRunConfig) -> list[str]:
    """Greedy answers (at most ``max_new_tokens``) to the first ``generation_samples`` test prompts."""
    model, tokenizer = trainer.model, trainer.processing_class
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for prompt in data.test["prompt"][: cfg.generation_samples]:
        enc = tokenizer(prompt, return_tensors="pt").to(device)
        ids = model.generate(**enc, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        outputs.append(tokenizer.decode(ids[0, enc["input_ids"].size(1):], skip_special_tokens=True).strip())
    return outputs


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """Unigram F1 (x100) between lower-cased word tokens, as SQuAD's F1; 100 when both are empty."""
    pred, ref = _words(prediction), _words(reference)
    if not pred or not ref:
        return 100.0 if pred == ref else 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 100.0 * 2 * precision * recall / (precision + recall)


def score_generations(predictions: Sequence[str], data: SFTData) -> dict[str, float]:
    """Mean token F1 (x100) of the greedy answers against the reference completions."""
    references = data.test["completion"][: len(predictions)]
    scores = [token_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    return {"token_f1": sum(scores) / len(scores) if scores else 0.0}


def run_extra(cfg: SFTRunConfig, data: SFTData, train_summary: Mapping[str, Any],
              predictions: Sequence[str]) -> dict[str, Any]:
    """What results.json keeps besides the metrics: sample counts, training summary, a few generations."""
    return {
        "dataset": cfg.dataset,
        "hub_id": SFT_DATASETS[cfg.dataset].hub_id,
        "method": cfg.method,
        "finetuning": cfg.finetuning,
        "samples": data.sizes(),
        "train": dict(train_summary),
        "examples": [{"prompt": p, "generated": g, "reference": r} for p, g, r in
                     zip(data.test["prompt"][:3], predictions[:3], data.test["completion"][:3], strict=False)],
    }


def remove_checkpoints(cfg: SFTRunConfig) -> None:
    """Delete the checkpoints (and a smoke model's initial copy, kept among them) once the results are written."""
    checkpoints.remove_checkpoints(cfg.checkpoint_dir, keep=cfg.keep_checkpoints)


def run(params: dict[str, Any]) -> tuple[SFTRunConfig, dict[str, float], dict[str, Any]]:
    """The notebook's steps in one call (``python -m r3f_utils train sft``): ``(cfg, metrics, extra)``."""
    cfg = resolve_sft_config(**params)
    data = load_sft_data(cfg)
    model, tokenizer = build_sft_model(cfg, data.texts())
    trainer = build_sft_trainer(cfg, model, tokenizer, data)
    train_summary = train_with_resume(trainer, cfg)
    metrics = evaluate_heldout(trainer, data, cfg)
    predictions = generate_completions(trainer, data, cfg)
    metrics.update(score_generations(predictions, data))
    return cfg, metrics, run_extra(cfg, data, train_summary, predictions)
