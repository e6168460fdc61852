"""Token-aware chunking with overlap.

Chunks are cut on the embedding model's own token boundaries, so no chunk exceeds the
model's input limit, and they prefer to end at a paragraph or sentence break.

A very long text (a 50 MB single-line file) is first cut into windows of at most
`SEGMENT_CHARS` characters, each ending at a paragraph break, line break or space when its
second half has one, and each window is tokenised and chunked on its own: memory then
follows the window, not the file (measured with tracemalloc: chunking a 3 MB line peaks at
152 MB of Python objects tokenised whole, 14 MB window by window). Chunks do not overlap
across a window boundary. Texts up to one window are chunked exactly as before, so their
chunk ids do not move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ragcli.core.records import Chunk

_SENTENCE_END = (".", "!", "?", ":", ";")
SEGMENT_CHARS = 200_000
_SEPARATORS = ("\n\n", "\n", " ", "\t")


def _break_quality(text: str, spans: Sequence[tuple[int, int]], j: int) -> int:
    """How good a cut after token j is: 3 paragraph, 2 line, 1 sentence end, 0 word gap."""
    end = spans[j][1]
    nxt = spans[j + 1][0] if j + 1 < len(spans) else len(text)
    gap = text[end:nxt]
    if "\n\n" in gap:
        return 3
    if "\n" in gap:
        return 2
    if gap and text[end - 1 : end] in _SENTENCE_END:
        return 1
    return 0 if gap else -1  # -1: inside a word (e.g. between word pieces)


def _cut(text: str, spans: Sequence[tuple[int, int]], start: int, size: int) -> int:
    """Index one past the last token of the chunk that starts at token `start`."""
    hard = min(start + size, len(spans))
    if hard == len(spans):
        return hard
    floor = start + max(1, (size * 3) // 5)  # never shrink a chunk below 60 % of its size
    best, best_q = hard, -2
    for j in range(hard - 1, floor - 2, -1):
        q = _break_quality(text, spans, j)
        if q > best_q:
            best, best_q = j + 1, q
            if q == 3:
                break
    return best


def chunk_text(text: str, spans: Sequence[tuple[int, int]], size: int, overlap: int) -> list[Chunk]:
    """Split `text` into chunks of at most `size` tokens, `overlap` tokens shared by neighbours.

    `spans` are the character offsets of the text's tokens (no special tokens), in order.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("need size >= 1 and 0 <= overlap < size")
    chunks: list[Chunk] = []
    start = 0
    while start < len(spans):
        end = _cut(text, spans, start, size)
        lo, hi = spans[start][0], spans[end - 1][1]
        chunks.append(Chunk(len(chunks), text[lo:hi], lo, hi, end - start))
        if end >= len(spans):
            break
        nxt = max(end - overlap, start + 1)
        # Start the overlap at a sentence start if one lies inside it (a chunk then reads from
        # the beginning of a sentence), else at a word start (so it re-tokenises the same).
        sentence = next(
            (j for j in range(nxt, end) if _break_quality(text, spans, j - 1) >= 1), None
        )
        if sentence is not None:
            nxt = sentence
        while nxt < end and spans[nxt][0] == spans[nxt - 1][1] and text[spans[nxt][0]].isalnum():
            nxt += 1
        start = nxt
    return chunks


def segments(text: str, size: int = SEGMENT_CHARS) -> Iterator[tuple[int, int]]:
    """(start, end) windows of at most `size` characters that cover `text` in order; each
    ends after the last paragraph break, line break or space of its second half, if any."""
    if size < 2:
        raise ValueError("need size >= 2")
    start, n = 0, len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            half = start + size // 2
            for sep in _SEPARATORS:
                cut = text.rfind(sep, half, end)
                if cut != -1:
                    end = cut + len(sep)
                    break
        yield start, end
        start = end


def chunk_long_text(
    text: str,
    token_spans: Callable[[str], Sequence[tuple[int, int]]],
    size: int,
    overlap: int,
    window: int = SEGMENT_CHARS,
) -> list[Chunk]:
    """`chunk_text` for a text of any length: tokenised and chunked one window at a time,
    with positions numbered across the whole text and offsets into it."""
    if len(text) <= window:
        return chunk_text(text, token_spans(text), size, overlap)
    chunks: list[Chunk] = []
    for lo, hi in segments(text, window):
        part = text[lo:hi]
        for c in chunk_text(part, token_spans(part), size, overlap):
            chunks.append(Chunk(len(chunks), c.text, c.start + lo, c.end + lo, c.n_tokens))
    return chunks
