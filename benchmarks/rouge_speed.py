"""How long does ROUGE take on a CNN/DailyMail-sized test set? (acceptance: <= 20 s for 11,490 pairs, 2 cores)

Scores ``--pairs`` synthetic (prediction, reference) pairs shaped like CNN/DM: references of 3-4
sentences and ~55 words, predictions of similar length sharing about half of their words with the
reference, over an English vocabulary with inflections (so the Porter stemmer does real work). Prints
the time of :func:`r3f_utils.rouge.compute_rouge` (rouge1, rouge2, rougeL, rougeLsum, stemming) and, with
``--compare``, of a plain single-process ``rouge_score.RougeScorer`` loop for reference.

    python benchmarks/rouge_speed.py                 # 11,490 pairs, all CPU cores
    python benchmarks/rouge_speed.py --workers 1 --compare
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

STEMS = [
    "report",
    "official",
    "police",
    "government",
    "minister",
    "president",
    "company",
    "market",
    "price",
    "share",
    "investor",
    "player",
    "team",
    "match",
    "season",
    "coach",
    "goal",
    "win",
    "lose",
    "fan",
    "club",
    "league",
    "title",
    "record",
    "injury",
    "hospital",
    "doctor",
    "patient",
    "family",
    "child",
    "parent",
    "school",
    "student",
    "teacher",
    "city",
    "village",
    "road",
    "car",
    "driver",
    "crash",
    "accident",
    "court",
    "judge",
    "trial",
    "lawyer",
    "charge",
    "crime",
    "victim",
    "witness",
    "attack",
    "protest",
    "election",
    "vote",
    "campaign",
    "party",
    "leader",
    "country",
    "border",
    "army",
    "soldier",
    "war",
    "peace",
    "talk",
    "deal",
    "agreement",
    "plan",
    "budget",
    "tax",
    "worker",
    "job",
    "strike",
    "storm",
    "flood",
    "fire",
    "weather",
    "scientist",
    "study",
    "research",
    "discovery",
    "space",
    "planet",
    "water",
    "energy",
    "oil",
    "power",
    "film",
    "star",
    "actor",
    "music",
    "song",
    "singer",
    "show",
    "television",
    "network",
    "phone",
    "computer",
    "internet",
    "user",
    "company",
]
SUFFIXES = ("", "", "", "s", "ed", "ing")  # real inflections: ROUGE-1.5.5 and nltk stem them alike
FUNCTION_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "by",
    "at",
    "from",
    "and",
    "but",
    "that",
    "this",
    "it",
    "was",
    "were",
    "is",
    "are",
    "has",
    "have",
]


def _sentence(rng: random.Random, n_words: int) -> str:
    words = [
        rng.choice(FUNCTION_WORDS) if rng.random() < 0.4 else rng.choice(STEMS) + rng.choice(SUFFIXES)
        for _ in range(n_words)
    ]
    return " ".join(words).capitalize() + "."


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` CNN/DM-like (prediction, reference) pairs: ~55-word, 3-4 sentence summaries."""
    rng = random.Random(seed)
    predictions, references = [], []
    for _ in range(n):
        k = rng.choice((3, 4))
        ref_sents = [_sentence(rng, rng.randint(45, 65) // k) for _ in range(k)]
        pred_sents = []
        for sent in ref_sents:  # keep about half of each reference sentence, in order, plus new words
            kept = [w for w in sent.rstrip(".").split() if rng.random() < 0.5]
            pred_sents.append(" ".join(kept) + " " + _sentence(rng, max(3, len(sent.split()) - len(kept))))
        predictions.append(" ".join(pred_sents))  # a model's output: one line
        references.append("\n".join(ref_sents))  # CNN/DM highlights: one sentence per line
    return predictions, references


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=11_490, help="number of pairs (CNN/DM test: 11,490)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument("--compare", action="store_true", help="also time a plain rouge_score loop")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds allowed; exit 1 when slower")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
    from r3f_utils.rouge import ROUGE_TYPES, compute_rouge

    predictions, references = synthetic_pairs(args.pairs)
    start = time.perf_counter()
    scores = compute_rouge(predictions, references, num_workers=args.workers)
    elapsed = time.perf_counter() - start
    workers = args.workers or os.cpu_count()
    print(
        f"r3f_utils.rouge.compute_rouge: {args.pairs} pairs, {workers} worker(s), {os.cpu_count()} CPU(s): "
        f"{elapsed:.2f} s  ({1000 * elapsed / args.pairs:.2f} ms/pair)"
    )
    print("  " + "  ".join(f"{k}={scores[k]:.2f}" for k in ROUGE_TYPES))
    if args.compare:
        from rouge_score import rouge_scorer

        from r3f_utils.sentences import sentences_per_line

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        start = time.perf_counter()
        for p, r in zip(predictions, references, strict=True):
            scorer.score(sentences_per_line(r), sentences_per_line(p))
        plain = time.perf_counter() - start
        print(f"plain rouge_score loop, 1 process: {plain:.2f} s")
    if elapsed > args.budget:
        print(f"SLOWER than the {args.budget:.0f} s budget")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
