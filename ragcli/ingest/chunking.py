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

Many texts are chunked with `chunk_many` (or `iter_chunks`, which yields each text's chunks
as soon as they are cut): texts and windows go to the embedder's `token_spans_batch` a few
hundred thousand characters at a time, tokenised on every core in one call, and each text
gets exactly the chunks `chunk_long_text` gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from ragcli.core.records import Chunk

Spans = Sequence[tuple[int, int]]
SpansBatch = Callable[[Sequence[str]], Sequence[Spans]]

_SENTENCE_END = ".!?:;"  # one character each
SEGMENT_CHARS = 200_000
_SEPARATORS = ("\n\n", "\n", " ", "\t")


def _cut(text: str, spans: Sequence[tuple[int, int]], start: int, size: int) -> int:
    """Index one past the last token of the chunk that starts at token `start`: the latest
    best cut among the last 40 % of `size` tokens, by the gap after the token: 3 paragraph
    break, 2 line break, 1 sentence end, 0 word gap, -1 inside a word (between word pieces).

    The hot loop of chunking, kept inline: one gap per token, no call per token."""
    hard = min(start + size, len(spans))
    if hard == len(spans):
        return hard
    floor = start + max(1, (size * 3) // 5)  # never shrink a chunk below 60 % of its size
    best, best_q = hard, -1  # no gap at all: cut at the size, inside a word
    nxt = spans[hard][0]  # where the token after j starts
    for j in range(hard - 1, floor - 2, -1):
        begin, end = spans[j]
        if end < nxt:  # a gap after token j
            gap = text[end:nxt]
            if "\n" in gap:
                if "\n\n" in gap:
                    return j + 1  # a paragraph break: the best there is
                q = 2
            else:
                q = 1 if end and text[end - 1] in _SENTENCE_END else 0
            if q > best_q:
                best, best_q = j + 1, q
        nxt = begin
    return best


def _sentence_start(text: str, spans: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """The first token in [lo, hi) right after a line break or a sentence end, else -1."""
    prev = spans[lo - 1][1]
    for j in range(lo, hi):
        begin, end = spans[j]
        if prev < begin and (
            "\n" in text[prev:begin] or (prev and text[prev - 1] in _SENTENCE_END)
        ):
            return j
        prev = end
    return -1


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
        sentence = _sentence_start(text, spans, nxt, end)
        if sentence != -1:
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


def _pieces(texts: Iterable[str], window: int) -> Iterator[tuple[int, int, str, bool]]:
    """(text index, offset, piece, last piece of its text?): each text whole when it fits one
    window, else its windows (made one at a time, never all at once)."""
    for i, text in enumerate(texts):
        if len(text) <= window:
            yield i, 0, text, True
            continue
        for lo, hi in segments(text, window):
            yield i, lo, text[lo:hi], hi == len(text)


def _batches(
    pieces: Iterator[tuple[int, int, str, bool]], budget: int
) -> Iterator[list[tuple[int, int, str, bool]]]:
    """Consecutive pieces in groups of at most `budget` characters (a larger piece alone)."""
    batch: list[tuple[int, int, str, bool]] = []
    size = 0
    for piece in pieces:
        if batch and size + len(piece[2]) > budget:
            yield batch
            batch, size = [], 0
        batch.append(piece)
        size += len(piece[2])
    if batch:
        yield batch


def iter_chunks(
    texts: Iterable[str],
    spans_batch: SpansBatch,
    size: int,
    overlap: int,
    window: int = SEGMENT_CHARS,
    batch_chars: int | None = None,
) -> Iterator[tuple[int, list[Chunk]]]:
    """(index, chunks) of each text in order, each text's chunks exactly
    `chunk_long_text(text, token_spans, size, overlap, window)`; the texts and the windows of
    long ones are tokenised together, `batch_chars` characters at a time (default two
    windows), so memory follows the batch, not the corpus or the longest text."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("need size >= 1 and 0 <= overlap < size")
    budget = batch_chars if batch_chars is not None else 2 * window
    done: list[Chunk] = []  # the chunks so far of the text being finished
    for batch in _batches(_pieces(texts, window), budget):
        spans = spans_batch([piece for _, _, piece, _ in batch])
        if len(spans) != len(batch):
            raise ValueError(f"spans_batch gave {len(spans)} span lists for {len(batch)} texts")
        for (i, lo, piece, last), piece_spans in zip(batch, spans, strict=True):
            chunks = chunk_text(piece, piece_spans, size, overlap)
            if lo == 0 and last:
                yield i, chunks
                continue
            base = len(done)
            done.extend(
                Chunk(base + c.position, c.text, c.start + lo, c.end + lo, c.n_tokens)
                for c in chunks
            )
            if last:
                yield i, done
                done = []


def chunk_many(
    texts: Sequence[str],
    spans_batch: SpansBatch,
    size: int,
    overlap: int,
    window: int = SEGMENT_CHARS,
    batch_chars: int | None = None,
) -> list[list[Chunk]]:
    """`chunk_long_text` of each text, with the tokeniser's batch call (`token_spans_batch`)
    over many texts and windows at once; see `iter_chunks`."""
    out: list[list[Chunk]] = [[] for _ in texts]
    for i, chunks in iter_chunks(texts, spans_batch, size, overlap, window, batch_chars):
        out[i] = chunks
    return out
