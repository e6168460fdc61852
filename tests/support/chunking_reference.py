"""The per-token chunking code as it was before batching (commit c9654df), kept as the oracle
that the batched and vectorised code must match exactly, and as the "old path" of
benchmarks/chunking.py.

`tiktoken_token_spans` is the old `OpenAIEmbedder.token_spans` (a Python loop per token);
`chunk_text` and `chunk_long_text` are the old ragcli/ingest/chunking.py functions (a call per
token to judge each cut). `segments` did not change and is ragcli's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ragcli.core.records import Chunk
from ragcli.ingest.chunking import SEGMENT_CHARS, segments

_SENTENCE_END = (".", "!", "?", ":", ";")


def tiktoken_token_spans(enc: Any, text: str) -> list[tuple[int, int]]:
    ids = enc.encode_ordinary(text)
    data = text.encode("utf-8")
    char_at: list[int] | None = None
    if len(data) != len(text):  # not ASCII: map byte offsets to character offsets
        char_at = [0] * (len(data) + 1)
        pos = 0
        for i, ch in enumerate(text):
            width = len(ch.encode("utf-8", "surrogatepass"))
            char_at[pos : pos + width] = [i] * width
            pos += width
        char_at[len(data)] = len(text)
    spans: list[tuple[int, int]] = []
    b = 0
    for t in ids:
        e = b + len(enc.decode_single_token_bytes(t))
        if char_at is None:
            start, end = b, e
        else:
            start, end = char_at[b], char_at[e - 1] + 1
        s, t_end = start, end
        while s < t_end and text[s].isspace():
            s += 1
        while t_end > s and text[t_end - 1].isspace():
            t_end -= 1
        spans.append((s, t_end) if s < t_end else (end, end))
        b = e
    return spans


def _break_quality(text: str, spans: Sequence[tuple[int, int]], j: int) -> int:
    end = spans[j][1]
    nxt = spans[j + 1][0] if j + 1 < len(spans) else len(text)
    gap = text[end:nxt]
    if "\n\n" in gap:
        return 3
    if "\n" in gap:
        return 2
    if gap and text[end - 1 : end] in _SENTENCE_END:
        return 1
    return 0 if gap else -1


def _cut(text: str, spans: Sequence[tuple[int, int]], start: int, size: int) -> int:
    hard = min(start + size, len(spans))
    if hard == len(spans):
        return hard
    floor = start + max(1, (size * 3) // 5)
    best, best_q = hard, -2
    for j in range(hard - 1, floor - 2, -1):
        q = _break_quality(text, spans, j)
        if q > best_q:
            best, best_q = j + 1, q
            if q == 3:
                break
    return best


def chunk_text(text: str, spans: Sequence[tuple[int, int]], size: int, overlap: int) -> list[Chunk]:
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
        sentence = next(
            (j for j in range(nxt, end) if _break_quality(text, spans, j - 1) >= 1), None
        )
        if sentence is not None:
            nxt = sentence
        while nxt < end and spans[nxt][0] == spans[nxt - 1][1] and text[spans[nxt][0]].isalnum():
            nxt += 1
        start = nxt
    return chunks


def chunk_long_text(
    text: str,
    token_spans: Callable[[str], Sequence[tuple[int, int]]],
    size: int,
    overlap: int,
    window: int = SEGMENT_CHARS,
) -> list[Chunk]:
    if len(text) <= window:
        return chunk_text(text, token_spans(text), size, overlap)
    chunks: list[Chunk] = []
    for lo, hi in segments(text, window):
        part = text[lo:hi]
        for c in chunk_text(part, token_spans(part), size, overlap):
            chunks.append(Chunk(len(chunks), c.text, c.start + lo, c.end + lo, c.n_tokens))
    return chunks
