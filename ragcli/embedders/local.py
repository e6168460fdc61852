"""The embedded embedder: all-MiniLM-L6-v2 on onnxruntime, offline.

Vectors match sentence-transformers (cosine 1.00000): mean pooling over the attention mask,
L2-normalised, inputs truncated at 256 tokens including [CLS] and [SEP].

Importing this module is cheap: numpy, onnxruntime and tokenizers are imported when first
needed (the tokenizer on the first token count, the ONNX session on the first ``embed``).
Instances are safe to share between threads (for example ``asyncio.to_thread``): loading is
guarded by a lock, and ``InferenceSession.run`` and the tokenizer's encode calls are
thread-safe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.core.native import native_import
from ragcli.embedders import model_files

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Encoding

    from ragcli.core.config import Settings

ENV_THREADS = "RAGCLI_EMBED_THREADS"


def _default_threads() -> int:
    """Intra-op threads: one per core available to this process, at most 4.

    Measured on the 2-core machines: 2 threads beat 1 for both a single query and batches;
    more threads than cores only adds contention.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class LocalEmbedder:
    """Embeds text with the committed all-MiniLM-L6-v2 ONNX graph."""

    model_id = "all-MiniLM-L6-v2"
    registry_name = "local"  # the `embedder` setting's value; the cache id's first part
    graph_file = model_files.GRAPH_FILE
    dimensions = 384
    in_process = True
    max_tokens = 256  # including [CLS] and [SEP]
    # Texts per ONNX run. Measured on Django documentation chunks (~180 tokens, 2 threads,
    # benchmarks/local_embedder.py): 8 is ~10 % faster than 32 and ~30 % faster than 128
    # (the activations of a small batch stay in cache; less padding), and 1 is slower again.
    batch_size = 8
    allow_spinning = True

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        threads: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else model_files.model_dir()
        env_threads = os.environ.get(ENV_THREADS)
        self.threads = threads or (int(env_threads) if env_threads else _default_threads())
        if batch_size is not None:
            self.batch_size = batch_size
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None  # no padding, no truncation
        self._sep_id = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEmbedder:
        """`embedder = local` (the registry's factory): nothing in the settings changes it."""
        return cls()

    # -- loading -------------------------------------------------------------------------

    def _load_tokenizers(self) -> None:
        with self._lock:
            if self._tokenizer is not None:
                return
            Tokenizer = native_import("tokenizers").Tokenizer  # noqa: N806

            path = self.model_dir / model_files.TOKENIZER_FILE
            if not path.is_file():
                raise model_files.ModelNotInstalledError(
                    f"embedder tokenizer {path} is missing: {model_files.INSTALL_HINT}"
                )
            # tokenizer.json as shipped pads and truncates to 128: turn both off. One
            # tokenizer serves counting (no truncation) and embedding (truncated by hand in
            # _encode_for_model): loading a second copy would cost ~25 ms on the cold path.
            tok = Tokenizer.from_file(str(path))
            tok.no_padding()
            tok.no_truncation()
            self._sep_id = tok.token_to_id("[SEP]")
            self._tokenizer = tok

    def _load_session(self) -> None:
        if self._tokenizer is None:
            self._load_tokenizers()
        with self._lock:
            if self._session is not None:
                return
            self._check_files()
            ort = native_import("onnxruntime")

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            # Spinning kept on (onnxruntime's default): on the 2-core machines turning it off
            # made one query ~50 % slower (6.7 vs 4.3 ms with idle gaps between queries) and
            # did not speed up Python work that ran right after an embed.
            opts.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if self.allow_spinning else "0"
            )
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(
                str(self.model_dir / self.graph_file),
                sess_options=opts,
                providers=["CPUExecutionProvider"],
            )

    def _check_files(self) -> None:
        model_files.check(directory=self.model_dir)

    def load(self) -> LocalEmbedder:
        """Load the tokenizer and the ONNX session now (otherwise the first embed does)."""
        self._load_session()
        return self

    # -- tokens --------------------------------------------------------------------------

    def _encode_plain(self, text: str) -> Encoding:
        if self._tokenizer is None:
            self._load_tokenizers()
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _encode_for_model(self, texts: list[str]) -> list[list[int]]:
        """[CLS] tokens [SEP], cut to max_tokens as sentence-transformers does."""
        limit, sep = self.max_tokens, self._sep_id
        out = []
        for enc in self._tokenizer.encode_batch(texts):
            ids = enc.ids
            out.append(ids if len(ids) <= limit else [*ids[: limit - 1], sep])
        return out

    def count_tokens(self, text: str) -> int:
        """Wordpiece tokens in ``text``, without [CLS]/[SEP] and without truncation."""
        return len(self._encode_plain(text).ids)

    def encode_ids(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens and without truncation."""
        return list(self._encode_plain(text).ids)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets ``(start, end)`` into ``text`` of each token (no special tokens).

        ``text[start:end]`` is the token's source text (several wordpieces of one word
        share the word's characters piecewise: "embedding" -> (0, 5), (5, 9)). To cut a
        chunk at token boundaries use ``text[spans[i][0]:spans[j][1]]``. Characters
        that produce no token (whitespace, control characters) belong to no span.
        """
        return self._encode_plain(text).offsets

    def token_spans_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """`token_spans` of each text, tokenised in one call (in parallel, in Rust)."""
        if self._tokenizer is None:
            self._load_tokenizers()
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [enc.offsets for enc in encodings]

    # -- vectors -------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), 384), rows L2-normalised, in input order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings; wrap a single text in a list")
        if self._session is None:
            self._load_session()
        import numpy as np

        n = len(texts)
        out = np.empty((n, self.dimensions), dtype=np.float32)
        if n == 0:
            return out
        encoded = self._encode_for_model(list(texts))
        lengths = [len(e) for e in encoded]
        for idx in self._batches(lengths):
            width = lengths[idx[0]]
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = encoded[i]
                mask[row, : lengths[i]] = 1
            hidden = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.maximum(norms, 1e-12)
        return out

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` on a worker thread, so the event loop keeps serving while ONNX runs."""
        import asyncio

        return await asyncio.to_thread(self.embed, texts)

    async def embed_batches(
        self, texts: Sequence[str], batch: int = 64
    ) -> AsyncIterator[tuple[list[int], np.ndarray]]:
        """Shortest texts first, `batch` at a time: ONNX keeps both cores busy on its own,
        so running batches concurrently would only add contention."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            yield rows, await self.aembed([texts[i] for i in rows])

    @property
    def cache_id(self) -> str:
        return f"{self.registry_name}:{self.model_id}"

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into batches: longest first, so that each batch pads only to its
        own longest member; a batch closes at ``batch_size`` texts, or early when the next
        text is less than half the batch's width (one long text among short ones would
        otherwise make every short one pay for the long one's padding)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            current = batches[-1] if batches else None
            if current and len(current) < self.batch_size and 2 * lengths[i] >= lengths[current[0]]:
                current.append(i)
            else:
                batches.append([i])
        return batches

    def __repr__(self) -> str:
        state = "loaded" if self._session is not None else "not loaded"
        return f"{type(self).__name__}({self.model_id!r}, dir={str(self.model_dir)!r}, {state})"


class LocalInt8Embedder(LocalEmbedder):
    """`embedder = "local-int8"`: the same model with int8 weight matrices (onnxruntime's
    dynamic quantization, per channel; ragcli/embedders/int8_weights.py). ~1.5× the
    passages/s of fp32 here; vectors close to but not the same as fp32's (cosine ~0.995): its
    own `cache_id`, so the two never share a cache entry or an index. The measured trade is
    in docs/benchmarks.md."""

    registry_name = "local-int8"  # cache id local-int8:all-MiniLM-L6-v2
    graph_file = model_files.INT8_GRAPH_FILE
    # One text per run: activations are quantized with one scale per tensor, so in a batch a
    # text's vector would depend on its neighbours and on padding (cosine ~0.99 to its vector
    # alone). Alone, a text always gets the same vector, as a query does. Batches of 8 were
    # ~1.3× faster, and moved more rankings away from fp32's (docs/benchmarks.md).
    batch_size = 1

    def _check_files(self) -> None:
        model_files.check_int8(directory=self.model_dir)
