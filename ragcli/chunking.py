"""Token-aware chunking with overlap.

Chunks are cut on the embedding model's own token boundaries, so no chunk exceeds the
model's input limit, and they prefer to end at a paragraph or sentence break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_SENTENCE_END = (".", "!", "?", ":", ";")


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    start: int  # character offsets into the document text
    end: int
    n_tokens: int


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
