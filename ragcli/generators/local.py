"""A local LLM in-process: llama.cpp (llama-cpp-python, the optional `local` extra) running a
GGUF, by default SmolLM2-135M-Instruct (see ragcli/generators/local_model.py).

On a CPU, time to first token is prompt prefill. llama.cpp keeps the KV cache of the last
prompt and, on the next request, evaluates only what follows the longest common token prefix:
with the prefix-aware prompt layout (ragcli/retrieval/prompt.py) a follow-up question over the
same sources skips the sources' prefill entirely. `warm()` loads the model and evaluates the
instruction prefix, so the first question already finds it cached.

One `Llama` per GGUF per process, loaded lazily and shared by every pipeline (and kept warm by
`serve`); one request uses it at a time. Generation runs in its own thread: tokens cross to the
event loop through an asyncio queue, and a stop flag checked between tokens ends generation as
soon as the consumer goes away (cancellation, a closed stream, a client that disconnected).

Through `python -m llama_cpp.server --model FILE` the same model is an OpenAI-compatible
server: use `--llm openai` with OPENAI_BASE_URL pointing at it instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import NotReadyError, ProviderError
from ragcli.generators import local_model
from ragcli.generators.prompt_types import SOURCES_HEADER, SYSTEM, Prompt

if TYPE_CHECKING:
    from ragcli.core.config import Settings

MISSING_EXTRA = (
    "--llm local needs llama-cpp-python: pip install 'ragcli[local]' (pipx: pipx install "
    "--force 'ragcli[local]'), then `ragcli model install --llm`"
)
N_CTX = 4096
MAX_ANSWER_TOKENS = 256
# Greedy, so answers are reproducible; the penalties keep a 135M model out of loops (plain
# greedy decoding repeated its first sentence until max_tokens on the sample questions).
SAMPLING = {"temperature": 0.0, "repeat_penalty": 1.1, "frequency_penalty": 0.5}
_END = object()


class LocalExtraMissingError(NotReadyError):
    """llama-cpp-python (the `local` extra) is not installed."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def reused_tokens(before: Sequence[int], prompt: Sequence[int]) -> int:
    """How many of `prompt`'s tokens llama.cpp takes from the KV cache holding `before`
    (Llama.generate: a whole-prompt hit reuses all; a prefix hit replays the last token)."""
    lcp = common_prefix(before, prompt)
    if lcp == len(prompt):
        return lcp if len(before) == len(prompt) else max(lcp - 1, 0)
    return lcp


@dataclass
class _Model:
    """A loaded Llama, the lock that gives it to one request at a time, and what the last
    request's prefill looked like."""

    llm: Any
    load_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: dict[str, int] = field(default_factory=dict)


_models: dict[Path, _Model] = {}
_models_lock = threading.Lock()


def _import_llama() -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError):  # not installed, or its shared library does not load
        raise LocalExtraMissingError(MISSING_EXTRA) from None
    return llama_cpp


def load(path: Path) -> _Model:
    """The process's Llama for `path`, loaded on first use (blocking: call it in a thread)."""
    with _models_lock:
        model = _models.get(path)
        if model is not None:
            return model
        llama_cpp = _import_llama()
        t = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=N_CTX, verbose=False, seed=0, logits_all=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError(f"cannot load the local model {path}: {exc}") from None
        model = _Model(llm, time.perf_counter() - t)
        _observe_prefill(model)
        _models[path] = model
        return model


def _observe_prefill(model: _Model) -> None:
    """Record, for every generation, the prompt's tokens and how many of them the KV cache
    already held (what llama.cpp skips), by wrapping this instance's `generate`."""
    llm = model.llm
    original = llm.generate

    def generate(tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        before = list(llm.input_ids)  # the tokens whose KV state is cached now
        prompt = list(tokens)
        model.last = {
            "prompt_tokens": len(prompt),
            "cached_tokens": reused_tokens(before, prompt),
        }
        return original(prompt, *args, **kwargs)

    llm.generate = generate


class LocalGenerator:
    """`--llm local`: streams from llama.cpp in this process."""

    label = ""
    prompt_layout = "prefix"

    def __init__(self, model_path: str = "", max_tokens: int = MAX_ANSWER_TOKENS) -> None:
        # Cheap checks first, so that a missing extra or model is one line before any work.
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalExtraMissingError(MISSING_EXTRA)
        self.path = local_model.resolve(model_path)
        self.name = f"local:{self.path.stem}"
        self.max_tokens = max_tokens
        self.warm_note = ""
        self._encoding: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalGenerator:
        """`llm = local` (the registry's factory): the GGUF of `local_model`, or the default."""
        return cls(settings.local_model)

    def count_tokens(self, text: str) -> int:
        # The budget is counted with cl100k_base (as for OpenAI models): deterministic and
        # available before the model loads. The model's own count is reported as usage.
        if self._encoding is None:
            from ragcli.providers.tokens import encoding

            self._encoding = encoding("cl100k_base")
        return len(self._encoding.encode(text, disallowed_special=()))

    async def warm(self) -> None:
        """Load the model and put the instruction prefix in its KV cache (off the loop)."""
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        self.count_tokens("")
        model = load(self.path)
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": SOURCES_HEADER},
        ]
        t = time.perf_counter()
        with model.lock:
            if model.llm.n_tokens == 0:  # nothing cached yet: a live model keeps its prefix
                for _ in model.llm.create_chat_completion(
                    messages=messages, max_tokens=1, temperature=0.0, stream=True
                ):
                    pass
            tokens = model.last.get("prompt_tokens", 0)
        self.warm_note = (
            f"local model {self.path.name} loaded in {model.load_s:.2f} s; instruction prefix "
            f"({tokens} tokens) prefilled in {time.perf_counter() - t:.2f} s and kept in the KV "
            "cache"
        )

    async def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        model = await asyncio.to_thread(load, self.path)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        worker = threading.Thread(
            target=self._generate,
            args=(model, prompt, put, stop),
            name="ragcli-llama",
            daemon=True,
        )
        worker.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise ProviderError(f"the local model failed: {item}") from None
                yield item
        finally:
            stop.set()  # the worker stops at its next token and releases the model

    def _generate(
        self, model: _Model, prompt: Prompt, put: Callable[[Any], None], stop: threading.Event
    ) -> None:
        """The blocking side: one generation, its pieces handed to `put`, then `_END`."""
        try:
            with model.lock:
                if stop.is_set():
                    return
                chunks = model.llm.create_chat_completion(
                    messages=prompt.messages(),
                    max_tokens=self.max_tokens,
                    stream=True,
                    **SAMPLING,
                )
                try:
                    for chunk in chunks:
                        if not prompt.usage and model.last:
                            prompt.usage.update(model.last)  # known once prefill has run
                        if stop.is_set():
                            break
                        text = chunk["choices"][0]["delta"].get("content")
                        if text:
                            put(text)
                finally:
                    chunks.close()  # ends llama's own generator (and its sampling) now
        except Exception as exc:  # reported to the consumer as one line
            put(exc)
        finally:
            put(_END)
