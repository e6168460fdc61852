"""The abstention decision, the names a question uses that no source mentions, the relevance
floor of printed sources, and the order they are printed in (cited first)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ragcli.retrieval.relevance import abstains, cosines, shown, unmatched_names
from ragcli.retrieval.session import write_sources


def test_abstains_below_the_threshold_or_on_an_unmatched_name() -> None:
    assert abstains(0.39, 0.4) and not abstains(0.4, 0.4) and not abstains(0.9, 0.4)
    assert abstains(0.9, 0.4, ["Salesforce"])
    assert not abstains(0.1, 0.0, ["Salesforce"])  # 0: never abstain
    assert not abstains(None, 0.4)  # nothing retrieved: not an abstention


def test_unmatched_names_skip_sentence_openers_and_possessives() -> None:
    texts = ["Our data retention policy", "A SEV1 page"]
    assert unmatched_names("What is Salesforce's data retention policy?", texts) == ["Salesforce"]
    assert unmatched_names("A SEV1 has gone on. Who is paged? Can I sleep?", texts) == []
    assert unmatched_names("Does the UK office close?", texts) == ["UK"]


def test_cosines() -> None:
    def f32(*xs: float) -> bytes:  # the embedding cache's form
        return np.array(xs, dtype=np.float32).tobytes()

    got = cosines(f32(1.0, 0.0), [f32(2.0, 0.0), f32(0.0, 3.0), f32(1.0, 1.0), f32(0.0, 0.0)])
    assert got == pytest.approx([1.0, 0.0, 2**-0.5, 0.0])


def _source(number: int, rank: int, path: str, relevance: float | None) -> dict[str, Any]:
    return {
        "number": number, "rank": rank, "source": path, "title": path.upper(),
        "partition": "p", "date": "2026-01-01", "score": 0.03, "relevance": relevance,
    }  # fmt: skip


def test_shown_keeps_sources_near_the_best() -> None:
    sources = [_source(1, 1, "a", 0.6), _source(2, 2, "b", 0.48), _source(3, 3, "c", 0.47)]
    assert [s["source"] for s in shown(sources, 0.8)] == ["a", "b"]
    assert len(shown(sources, 0.0)) == 3


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def note(self, text: str) -> None:
        pass


def test_cited_sources_are_printed_first_then_by_rank() -> None:
    sources = [_source(1, 1, "a", 0.6), _source(2, 3, "b", 0.55), _source(3, 2, "c", 0.58)]
    out = _Out()
    write_sources({"cached": False, "answer": "It is so. [2]", "sources": sources}, out, 0.8)
    lines = out.text.split("Sources:\n")[1].splitlines()
    assert [line.split()[1] for line in lines] == ["b", "a", "c"]
    assert lines[0].endswith("relevance 0.55")


def test_an_abstention_lists_the_closest_sources_uncited() -> None:
    sources = [_source(1, 1, "a", 0.2), _source(2, 2, "b", 0.1)]
    out = _Out()
    result = {"cached": False, "answer": "No answer.", "answered": False, "sources": sources}
    write_sources(result, out, 0.8)
    assert "Closest sources" in out.text and "Sources:" not in out.text
    assert [line.split()[:2] for line in out.text.strip().splitlines()[1:]] == [
        ["-", "a"], ["-", "b"]
    ]  # fmt: skip
