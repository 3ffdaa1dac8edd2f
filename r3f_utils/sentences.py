"""An offline English sentence splitter, for summary-level ROUGE-L (``rougeLsum``: one sentence per line).

``nltk.sent_tokenize`` needs the ``punkt_tab`` data download, which fails offline; this module is a small
rule-based splitter with no data files. It splits after ``.``, ``!`` or ``?`` (optionally followed by
closing quotes or brackets) when the next word starts a new sentence, and never splits after common
abbreviations (``Mr.``, ``U.S.``, ``Jan.``), initials (``J. K. Rowling``) or inside numbers (``3.5``).
Existing line breaks are always sentence boundaries, so CNN/DailyMail highlights (one per line) keep
their own sentences.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "sentences_per_line", "split_sentences"]

# lower-cased, without the final period; multi-period ones (u.s, e.g) are matched as written
ABBREVIATIONS: frozenset[str] = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cpl",
        "adm",
        "gov",
        "sen",
        "rep",
        "rev",
        "hon",
        "pres",
        "supt",
        "insp",
        "det",
        "co",
        "corp",
        "inc",
        "ltd",
        "bros",
        "dept",
        "univ",
        "assn",
        "est",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "fig",
        "figs",
        "approx",
        "vs",
        "etc",
        "al",
        "cf",
        "ca",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thur",
        "thurs",
        "fri",
        "sat",
        "sun",
        "ave",
        "blvd",
        "rd",
        "hwy",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "u.s.a",
        "d.c",
        "l.a",
        "n.y",
        "a.m",
        "p.m",
        "e.g",
        "i.e",
    ]
)

# a candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, then the start
# of the next sentence (an upper-case letter, a digit or an opening quote/bracket)
_BOUNDARY = re.compile(r"""([.!?]+)(['"’”)\]]*)(\s+)(?=['"‘“(\[]*[A-Z0-9])""")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _is_abbreviation(text_before: str) -> bool:
    """Whether the period that ends ``text_before`` belongs to an abbreviation or an initial."""
    match = _WORD_BEFORE.search(text_before)
    if match is None:
        return False
    word = match.group(1).lstrip("\"'‘“([").lower()
    if word in ABBREVIATIONS:
        return True
    # a single letter ("J." in "J. K. Rowling") or dotted initials ("U.S", "a.m") are never sentence ends
    return (len(word) == 1 and word.isalpha()) or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def _split_line(line: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        end = match.end(2)
        if match.group(1) == "." and _is_abbreviation(line[start : match.start(1)]):
            continue
        sentence = line[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end(3)
    tail = line[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences; every line break is a boundary, empty pieces are dropped."""
    return [s for line in text.splitlines() for s in _split_line(line)]


def sentences_per_line(text: str) -> str:
    """``text`` with one sentence per line, the input format of ``rougeLsum`` and of ROUGE-1.5.5."""
    return "\n".join(split_sentences(text))
