"""How relevant a retrieved chunk is, in a measure a person can read, and whether the evidence
is strong enough to answer at all.

Relevance is the cosine similarity between the question's embedding and the chunk's (the
vectors the index holds, found in the embedding cache), 0–1 for the local model: unlike the
fused (reciprocal-rank) scores it means the same thing from one question to the next, so one
threshold serves every question. `ask` abstains when the best chunk's relevance is below
`abstain_threshold` (benchmarks/abstention.py calibrates it), and prints only the sources
whose relevance is at least `source_floor` × the best one's.
"""

from __future__ import annotations

import math
import operator
import re
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

NO_ANSWER = "No answer in the indexed documents."


def cosines(question: bytes, chunks: Sequence[bytes]) -> list[float]:
    """Cosine similarity of the question's vector to each chunk's, all as float32 bytes (the
    embedding cache's form). Plain Python on purpose: a few 384-wide vectors take well under a
    millisecond, and an answer-cache hit in a fresh process then imports no numpy (≈ 25 ms)."""
    q = array("f", question)
    qn = math.sqrt(sum(map(operator.mul, q, q))) or 1.0
    out = []
    for blob in chunks:
        v = array("f", blob)
        norm = math.sqrt(sum(map(operator.mul, v, v))) or 1.0
        out.append(sum(map(operator.mul, q, v)) / (qn * norm))
    return out


def abstains(best: float | None, threshold: float, unmatched: Sequence[str] = ()) -> bool:
    """Whether to answer "no answer": the best relevance is below the threshold, or the
    question names something (`unmatched_names`) that no retrieved chunk mentions. A
    threshold of 0 never abstains; nothing retrieved (`best` None) is not an abstention but
    an empty answer."""
    if threshold <= 0 or best is None:
        return False
    return best < threshold or bool(unmatched)


_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+)\W*\w+")
_NAME = re.compile(r"\b[A-Z][\w-]*[A-Za-z0-9]")


def unmatched_names(question: str, texts: Sequence[str]) -> list[str]:
    """The names in the question (capitalised words not opening a sentence: "Google",
    "Salesforce", "UK") that none of `texts` contains, case aside. A question about another
    company's policy finds this company's policy close in meaning; the name tells them apart."""
    opening = {m.end() for m in _SENTENCE_START.finditer(question)}
    haystack = " ".join(texts).lower()
    names = [m.group() for m in _NAME.finditer(question) if m.end() not in opening]
    names = [n[:-2] if n.endswith(("'s", "’s")) else n for n in names]
    return [n for n in names if n != "I" and n.lower() not in haystack]


def shown(sources: Sequence[Mapping[str, Any]], floor: float) -> list[Mapping[str, Any]]:
    """The sources worth printing: relevance ≥ floor × the best relevance (a source without
    one is kept)."""
    values = [s["relevance"] for s in sources if s.get("relevance") is not None]
    if not values or floor <= 0:
        return list(sources)
    least = floor * max(values)
    return [s for s in sources if s.get("relevance") is None or s["relevance"] >= least]
