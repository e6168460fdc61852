"""`chunk_many` / `iter_chunks`: many texts chunked with one tokeniser call per batch give each
text exactly what `chunk_long_text` gives it alone, on the real local tokenizer and real
tiktoken; the inlined `chunk_text` cuts exactly as the old per-token code
(tests/support/chunking_reference.py); batches stay within their character budget."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.core.records import Document, FileRef
from ragcli.embedders.local import LocalEmbedder
from ragcli.embedders.openai_embedder import OpenAIEmbedder
from ragcli.ingest.chunking import chunk_long_text, chunk_many, chunk_text, iter_chunks
from ragcli.ingest.documents import discover, load
from tests.support import chunking_reference as ref

LOCAL = LocalEmbedder()  # the tokenizer only
OPENAI = OpenAIEmbedder("text-embedding-3-small")
SAMPLE = Path(__file__).resolve().parents[3] / "sample_corpus"


def _old_spans(emb: LocalEmbedder | OpenAIEmbedder):
    """The single-text spans as they were: tiktoken's per-token loop, the local offsets."""
    if isinstance(emb, OpenAIEmbedder):
        return lambda text: ref.tiktoken_token_spans(emb._enc(), text)
    return emb.token_spans


EMBEDDERS = pytest.mark.parametrize("emb", [LOCAL, OPENAI], ids=["local", "tiktoken"])


def _sample_texts() -> list[str]:
    """The sample corpus's documents as ingest reads them (front matter and all)."""
    docs = [load(ref) for ref in discover([SAMPLE]) if isinstance(ref, FileRef)]
    texts = [doc.text for doc in docs if isinstance(doc, Document)]
    assert len(texts) >= 40
    return texts


def _varied(seed: int, n: int, longest: int = 400) -> list[str]:
    rnd = random.Random(seed)
    pieces = [
        "Word",
        "word",
        "x.",
        "end;",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "é",
        "中文",
        "🎉",
        "\xa0",
    ]
    pieces += ["supercalifragilistic", "a.b.c", "Ok!", "  \n  \n"]
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, longest))) for _ in range(n)]


@EMBEDDERS
def test_sample_corpus_chunks_do_not_move(emb) -> None:
    """The sample corpus's chunks (their ids and the status digest follow them) are those the
    old per-document, per-token path gave, at the default sizes and at small ones."""
    texts = _sample_texts()
    for size, overlap in ((200, 40), (24, 8)):
        old = [ref.chunk_long_text(t, _old_spans(emb), size, overlap) for t in texts]
        assert chunk_many(texts, emb.token_spans_batch, size, overlap) == old
        assert sum(map(len, old)) > len(texts)


@EMBEDDERS
def test_chunk_many_is_chunk_long_text_of_each_text(emb) -> None:
    texts = ["", " \n ", "One short sentence.", *_varied(5, 60)]
    texts.insert(7, "".join(_varied(6, 40, 600)))  # long: several windows of 3,000 characters
    assert len(texts[7]) > 3 * 3000
    old = [ref.chunk_long_text(t, _old_spans(emb), 30, 6, window=3000) for t in texts]
    for batch_chars in (None, 1, 5000, 10**9):
        got = chunk_many(texts, emb.token_spans_batch, 30, 6, window=3000, batch_chars=batch_chars)
        assert got == old, batch_chars
    assert [chunk_long_text(t, emb.token_spans, 30, 6, window=3000) for t in texts] == old


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.one_of(
            st.sampled_from(list("ab .;!?:\n\t-é中🎉\xa0")),
            st.characters(exclude_categories=("Cs",)),
        ),
        max_size=800,
    ),
    size=st.integers(2, 48),
    data=st.data(),
)
def test_property_chunk_text_cuts_as_the_old_code(text: str, size: int, data) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    for emb in (LOCAL, OPENAI):
        spans = emb.token_spans(text)
        assert chunk_text(text, spans, size, overlap) == ref.chunk_text(text, spans, size, overlap)


@EMBEDDERS
def test_chunk_text_cuts_as_the_old_code_on_prose(emb) -> None:
    texts = [*_sample_texts(), *_varied(7, 200, 1500)]
    for text, spans in zip(texts, emb.token_spans_batch(texts), strict=True):
        for size, overlap in ((200, 40), (60, 59), (7, 0)):
            assert chunk_text(text, spans, size, overlap) == ref.chunk_text(
                text, spans, size, overlap
            )


class Watched:
    """A spans_batch that records what each call was given."""

    def __init__(self, emb) -> None:
        self.emb, self.calls = emb, []

    def __call__(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        self.calls.append([len(t) for t in texts])
        return self.emb.token_spans_batch(texts)


def test_a_long_text_goes_window_by_window_within_the_budget() -> None:
    text = " ".join(f"Word{i} carries meaning {i % 13}." for i in range(4000))  # ~110 kB
    texts = ["A short one.", text, "Another short text."]
    spans = Watched(LOCAL)
    got = chunk_many(texts, spans, 40, 8, window=10_000, batch_chars=25_000)
    assert got == [ref.chunk_long_text(t, LOCAL.token_spans, 40, 8, 10_000) for t in texts]
    assert len(spans.calls) >= len(text) // 25_000  # never all the windows at once
    assert all(sum(call) <= 25_000 for call in spans.calls)
    assert all(max(call) <= 10_000 for call in spans.calls)
    assert [c.position for c in got[1]] == list(range(len(got[1])))
    assert got[1][-1].end == len(text.rstrip())


def test_small_texts_share_calls_and_a_piece_over_the_budget_goes_alone() -> None:
    texts = _varied(8, 300, 60)
    spans = Watched(OPENAI)
    chunk_many(texts, spans, 20, 4, window=2000, batch_chars=4000)
    assert len(spans.calls) < len(texts) // 10
    assert [n for call in spans.calls for n in call] == [len(t) for t in texts]  # in order
    spans = Watched(OPENAI)
    chunk_many(["x" * 50, "y " * 1000, "z"], spans, 20, 4, window=5000, batch_chars=100)
    assert spans.calls == [[50], [2000], [1]]


def test_iter_chunks_yields_each_text_as_its_batch_is_done() -> None:
    pulled: list[int] = []

    def texts() -> Iterator[str]:
        for i, text in enumerate(_varied(9, 100, 80)):
            pulled.append(i)
            yield text

    stream = iter_chunks(texts(), LOCAL.token_spans_batch, 20, 4, window=2000, batch_chars=2000)
    first, _ = next(stream)
    assert first == 0 and len(pulled) < 60  # the rest is not read (nor tokenised) yet
    assert [i for i, _ in stream] == list(range(1, 100))


def test_bad_arguments_fail_in_one_line() -> None:
    with pytest.raises(ValueError, match="size"):
        chunk_many(["x"], LOCAL.token_spans_batch, 10, 10)
    with pytest.raises(ValueError, match="span lists"):
        chunk_many(["a", "b"], lambda texts: [[(0, 1)]], 10, 2)
    assert chunk_many([], LOCAL.token_spans_batch, 10, 2) == []
