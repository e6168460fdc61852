"""Chunking on the real model tokenizer: coverage, overlap, and the input limit."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest.chunking import chunk_long_text, chunk_text, segments

EMB = LocalEmbedder()


def _chunks(text: str, size: int = 40, overlap: int = 8):
    return chunk_text(text, EMB.token_spans(text), size, overlap)


def test_short_text_is_one_chunk() -> None:
    [only] = _chunks("Rotate the pager on Monday.")
    assert only.text == "Rotate the pager on Monday."


def test_chunks_cover_the_text_in_order_with_overlap() -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(60))
    chunks = _chunks(text, 40, 8)
    assert len(chunks) > 5
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # neighbours overlap
        assert b.start > a.start  # and always move forward
    for c in chunks:
        assert c.n_tokens <= 40
        assert text[c.start : c.end] == c.text


def test_prefers_paragraph_breaks() -> None:
    para = "This paragraph has exactly some words in it and then it ends here."
    text = "\n\n".join([para] * 12)
    for c in _chunks(text, 40, 0)[:-1]:
        assert c.text.endswith("ends here.")


def test_no_chunk_exceeds_the_model_limit_when_reembedded() -> None:
    text = "supercalifragilisticexpialidocious antidisestablishmentarianism " * 300
    for c in _chunks(text, 254, 40):
        assert EMB.count_tokens(c.text) <= 254


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        chunk_text("x", [(0, 1)], 10, 10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(min_size=0, max_size=1500),
    size=st.integers(min_value=2, max_value=64),
    data=st.data(),
)
def test_property_chunks_cover_every_token_in_order(text: str, size: int, data) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=size - 1))
    spans = EMB.token_spans(text)
    chunks = chunk_text(text, spans, size, overlap)
    if not spans:
        assert chunks == []
        return
    covered = set()
    for c in chunks:
        assert 1 <= c.n_tokens <= size
        covered |= {i for i, (s, e) in enumerate(spans) if s >= c.start and e <= c.end}
    assert covered == set(range(len(spans)))  # every token is in some chunk
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


# -- very long texts: tokenised window by window ------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab \n\t.é"), max_size=400), size=st.integers(2, 50))
def test_property_segments_cover_the_text_in_order(text: str, size: int) -> None:
    cuts = list(segments(text, size))
    assert "".join(text[a:b] for a, b in cuts) == text
    assert all(0 < b - a <= size for a, b in cuts)
    for a, b in cuts[:-1]:  # a window ends at whitespace when its second half has some
        half = text[a + size // 2 : a + size]
        if any(c in half for c in " \n\t"):
            assert text[b - 1] in " \n\t", (text[a:b], half)


def test_a_long_text_is_tokenised_window_by_window_and_chunked_in_order() -> None:
    text = " ".join(f"Word{i} carries meaning {i % 13}." for i in range(3000))  # ~80 kB
    seen: list[int] = []

    def spans(part: str) -> list[tuple[int, int]]:  # the real tokenizer, watched
        seen.append(len(part))
        return EMB.token_spans(part)

    chunks = chunk_long_text(text, spans, 40, 8, window=10_000)
    assert len(seen) > 1 and max(seen) <= 10_000
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start <= a.end or not text[a.end : b.start].strip()
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.n_tokens <= 40
    # deterministic, and a text within one window is chunked exactly as before
    assert chunk_long_text(text, EMB.token_spans, 40, 8, window=10_000) == chunks
    short = text[:5_000]
    assert chunk_long_text(short, EMB.token_spans, 40, 8, window=10_000) == _chunks(short, 40, 8)
