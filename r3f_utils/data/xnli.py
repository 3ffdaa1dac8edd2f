"""XNLI (Table 3): English training data, zero-shot evaluation on the test sets of 15 languages.

The Hub dataset is ``facebook/xnli`` with one config per language (fields ``premise``, ``hypothesis``,
``label``: 0 entailment, 1 neutral, 2 contradiction). A local copy uses the same field names, one folder per
language: ``<data_dir>/<lang>/<split>.jsonl`` (``train`` is only needed for English). Both paths go through
:func:`r3f_utils.data.sources.load_split`.

Zero-shot cross-lingual transfer, as in the paper: train on English only, choose the checkpoint on the
English dev set, report accuracy on every language's test set and the average over the 15 languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets

from r3f_utils.data.sources import load_split

__all__ = [
    "XNLI_HUB_ID",
    "XNLI_LANGUAGES",
    "XNLI_NUM_LABELS",
    "XNLI_TEXT_KEYS",
    "XnliData",
    "check_languages",
    "load_xnli",
]

XNLI_HUB_ID = "facebook/xnli"
# the order of Table 3
XNLI_LANGUAGES: tuple[str, ...] = (
    "en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur",
)
XNLI_TEXT_KEYS: tuple[str, str] = ("premise", "hypothesis")
XNLI_NUM_LABELS = 3
TRAIN_LANGUAGE = "en"  # zero-shot: the only language seen in training and checkpoint selection


@dataclass
class XnliData:
    """English train and dev splits, and one test split per evaluated language."""

    train: datasets.Dataset
    dev: datasets.Dataset  # English validation split (checkpoint selection)
    test: dict[str, datasets.Dataset]  # language -> test split

    def texts(self) -> list[str]:
        """Texts to train a tiny model's tokenizer on: the English training data and the test premises.

        A real multilingual tokenizer (XLM-R) has seen every language in pre-training; a tiny tokenizer trained
        on English only would map other scripts to unknown tokens, so the test premises (never their labels)
        stand in for the pre-training corpus.
        """
        return [*self.train["premise"], *self.train["hypothesis"],
                *(p for ds in self.test.values() for p in ds["premise"])]


def check_languages(languages: Sequence[str]) -> list[str]:
    """Validate a list of XNLI language codes; keep Table 3's order. Raises ValueError naming the bad codes."""
    if isinstance(languages, str):
        raise ValueError(f"languages must be a list of codes, e.g. ['en', 'fr'], not the string {languages!r}")
    unknown = [lang for lang in languages if lang not in XNLI_LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"unknown XNLI language(s) {unknown or '(none given)'}; choose from {list(XNLI_LANGUAGES)}")
    return [lang for lang in XNLI_LANGUAGES if lang in set(languages)]


def _lang_dir(data_dir: str | Path | None, lang: str) -> Path | None:
    return None if data_dir is None else Path(data_dir) / lang


def _checked(ds: datasets.Dataset, where: str) -> datasets.Dataset:
    missing = [k for k in (*XNLI_TEXT_KEYS, "label") if k not in ds.column_names]
    if missing:
        raise ValueError(f"XNLI {where}: fields {missing} are missing (found {ds.column_names}); local files need "
                         f"the Hub's field names {[*XNLI_TEXT_KEYS, 'label']}")
    bad = sorted({int(x) for x in ds["label"]} - set(range(XNLI_NUM_LABELS)))
    if bad:
        raise ValueError(f"XNLI {where}: labels {bad} are outside 0..{XNLI_NUM_LABELS - 1}")
    return ds


def _take(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    return ds if limit is None or limit >= len(ds) else ds.select(range(limit))


def load_xnli(
    languages: Sequence[str] = XNLI_LANGUAGES,
    *,
    data_dir: str | Path | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> XnliData:
    """English train/validation and the test split of each of ``languages``, from ``data_dir`` or the Hub.

    Raises:
        ValueError: unknown language, missing fields or out-of-range labels.
        r3f_utils.data.DatasetUnavailableError: neither the local files nor the Hub are available.
    """
    langs = check_languages(languages)
    en = _lang_dir(data_dir, TRAIN_LANGUAGE)
    train = _checked(load_split(XNLI_HUB_ID, TRAIN_LANGUAGE, "train", data_dir=en), "en train")
    dev = _checked(load_split(XNLI_HUB_ID, TRAIN_LANGUAGE, "validation", data_dir=en), "en validation")
    test = {
        lang: _take(_checked(load_split(XNLI_HUB_ID, lang, "test", data_dir=_lang_dir(data_dir, lang)),
                             f"{lang} test"), max_eval_samples)
        for lang in langs
    }
    return XnliData(train=_take(train, max_train_samples), dev=_take(dev, max_eval_samples), test=test)
