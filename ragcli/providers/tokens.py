"""Token counting for OpenAI-compatible models, offline.

tiktoken downloads its BPE files on first use; ragcli carries cl100k_base and o200k_base
(MIT, from tiktoken's public files; sha256 checked by tiktoken itself) and points tiktoken's
cache at them. Loading costs 0.1–0.2 s, so it happens only when a count is needed.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import tiktoken

DATA_DIR = Path(__file__).resolve().parents[1] / "tiktoken_data"
_lock = threading.Lock()


@functools.cache
def encoding(name: str) -> tiktoken.Encoding:
    """`cl100k_base` or `o200k_base`, loaded from the files shipped with ragcli."""
    import tiktoken

    with _lock:
        saved = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(DATA_DIR)
        try:
            return tiktoken.get_encoding(name)
        finally:
            if saved is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = saved


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The model's encoding when tiktoken knows it, else o200k (current OpenAI default)."""
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = "o200k_base"
    return encoding(name if name in ("cl100k_base", "o200k_base") else "o200k_base")


# -- token offsets for chunking, many texts at once ------------------------------------------
# Every character str.isspace() calls whitespace lies below U+3001 (U+3000 is the last).
_SPACE_LIMIT = 0x3001
MAX_THREADS = 8


def threads() -> int:
    """Tokeniser threads: one per core available to this process, at most MAX_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


@functools.cache
def _byte_lengths(enc: tiktoken.Encoding) -> np.ndarray:
    """Bytes of each token id (0 for ids the encoding lacks), built once per encoding."""
    import numpy as np

    lengths = np.zeros(enc.max_token_value + 1, dtype=np.int64)
    for token in range(len(lengths)):  # once per vocabulary entry, never per input token
        try:  # noqa: SIM105 (suppress() would cost a context manager per id: ~2x slower)
            lengths[token] = len(enc.decode_single_token_bytes(token))
        except KeyError:  # a gap between the ordinary and the special tokens
            pass
    return lengths


@functools.cache
def _space_table() -> np.ndarray:
    import numpy as np

    # One entry past the limit (False) stands for every character from there on.
    return np.array([chr(c).isspace() for c in range(_SPACE_LIMIT + 1)], dtype=bool)


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """One pool of `threads()` workers per process, kept between calls (a pool started per
    call measured slower: 0.84 against 0.51 s wall for the Django docs in 20-file calls). A
    forked child makes its own (the parent's threads do not exist there)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            from concurrent.futures import ThreadPoolExecutor

            _pool = (os.getpid(), ThreadPoolExecutor(threads(), thread_name_prefix="tiktoken"))
        return _pool[1]


def _encode_many(enc: tiktoken.Encoding, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text (as `encode_ordinary`), on `threads()` threads: the texts cut
    into one run of about equal characters per thread (a task per text cost more than
    encoding a small one), each encoded with the GIL released, into a numpy buffer (no
    Python int per token)."""

    def encode(group: Sequence[str]) -> list[np.ndarray]:
        # No special token is allowed or refused: the same ids as encode_ordinary.
        return [enc.encode_to_numpy(text, disallowed_special=()) for text in group]

    n = min(threads(), len(texts))
    if n <= 1:
        return encode(texts)
    total = sum(map(len, texts))
    cuts, seen = [0], 0
    for i, text in enumerate(texts):
        seen += len(text)
        if seen * n >= total * len(cuts) and len(cuts) < n:
            cuts.append(i + 1)
    cuts.append(len(texts))
    groups = [texts[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    return [ids for part in _executor().map(encode, groups) for ids in part]


def _char_offsets(
    joined: str, bstart: np.ndarray, bend: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Byte offsets into joined's UTF-8 as character offsets: a token starts at the character
    holding its first byte and ends after the character holding its last byte."""
    import numpy as np

    if joined.isascii():
        return bstart, bend
    data = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
    char_at = np.cumsum((data & 0xC0) != 0x80, dtype=np.int64) - 1  # char of each byte
    return char_at[bstart], char_at[bend - 1] + 1


def _trim(joined: str, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each span without its leading and trailing whitespace; a whitespace-only span becomes
    the empty span where it ends. Only spans that start or end with whitespace are looked
    up, in the sorted positions of the text's other characters."""
    import numpy as np

    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        codes = np.minimum(np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32), _SPACE_LIMIT)
    space = _space_table()[codes]
    solid = np.append(np.flatnonzero(~space), len(joined))  # a sentinel after the text
    s, e = start.copy(), end.copy()
    lead = space[start]
    s[lead] = solid[np.searchsorted(solid, start[lead])]  # the first solid character >= start
    blank = s >= end
    tail = space[end - 1] & ~blank
    e[tail] = solid[np.searchsorted(solid, end[tail]) - 1] + 1  # after the last one < end
    s[blank] = end[blank]
    return s, e


def token_spans_batch(enc: tiktoken.Encoding, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Character offsets of each token of each text, trimmed of the whitespace BPE tokens carry
    (" word", ".\\n\\n"); a whitespace-only token is an empty span where its whitespace ends;
    a character split over several tokens belongs to each of them. Vectorised over all the
    tokens of all the texts at once (one joined text, its offsets shifted back per text)."""
    import numpy as np

    if not texts:
        return []
    ids = _encode_many(enc, texts)
    counts = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.concatenate(ids)
    blen = _byte_lengths(enc)[flat]
    bend = np.cumsum(blen)
    joined = "".join(texts)
    start, end = _char_offsets(joined, bend - blen, bend)
    s, e = _trim(joined, start, end)
    text_at = np.cumsum([0, *map(len, texts)], dtype=np.int64)[:-1]
    shift = np.repeat(text_at, counts)
    pairs = list(zip((s - shift).tolist(), (e - shift).tolist(), strict=True))
    bounds = np.cumsum(counts).tolist()
    return [pairs[a:b] for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]
