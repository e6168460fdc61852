"""Token counting for OpenAI-compatible models, offline.

tiktoken downloads its BPE files on first use; ragcli carries cl100k_base and o200k_base
(MIT, from tiktoken's public files; sha256 checked by tiktoken itself) and points tiktoken's
cache at them. Loading costs 0.1–0.2 s, so it happens only when a count is needed.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
