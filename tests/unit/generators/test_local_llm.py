"""`--llm local`: llama.cpp in-process. Streaming, cancellation and prefix reuse need the
optional extra and the model (`make install-local`) and are skipped without them; a missing
extra or model fails before any work. Through ragcli processes: tests/e2e/test_local_llm.py."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest

from ragcli.generators import local_model
from tests.support.local_llm import HAVE_EXTRA, needs_model


def test_missing_extra_or_model_fails_before_any_work(monkeypatch, tmp_path: Path) -> None:
    from ragcli.generators.local import LocalExtraMissingError, LocalGenerator

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name)
    )
    with pytest.raises(LocalExtraMissingError, match=r"pip install 'ragcli\[local\]'"):
        LocalGenerator()
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if HAVE_EXTRA:
        with pytest.raises(local_model.LocalModelMissingError, match="no such GGUF"):
            LocalGenerator(str(tmp_path / "missing.gguf"))


def test_model_install_verifies_sha256(tmp_path: Path) -> None:
    bad = tmp_path / "fake.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(local_model.LocalModelMissingError, match="expected 98362432"):
        local_model.install(bad, tmp_path / "dest", quiet=True)
    assert not (tmp_path / "dest" / local_model.GGUF_FILE).exists()


def _prompt(question: str, texts: list[str]):
    from ragcli.index.catalog import ChunkRecord
    from ragcli.retrieval.prompt import build_prompt

    chunks = [
        ChunkRecord(f"c{i}", t, f"docs/d{i}.md", f"d{i}.md", "docs", f"Doc {i}", "2026-01-01", 0)
        for i, t in enumerate(texts)
    ]
    from ragcli.generators.local import LocalGenerator

    return build_prompt(question, [(c, 0.5) for c in chunks], 1500, LocalGenerator().count_tokens)


SOURCES = [
    "To rotate the on-call pager, open PageRelay and click Hand Over before 10:00 UTC on Monday.",
    "If PageRelay is down, call the duty manager, who keeps a paper copy of the rota.",
]


async def _collect(gen, question: str, prompt, limit: int | None = None) -> list[str]:
    pieces: list[str] = []
    stream = gen.stream(question, prompt)
    try:
        async for piece in stream:
            pieces.append(piece)
            if limit is not None and len(pieces) >= limit:
                break
    finally:
        await stream.aclose()
    return pieces


def _generated(path: Path) -> int:
    """Tokens the shared model generated in its last request (KV state minus the prompt)."""
    from ragcli.generators import local

    model = local._models[path]
    deadline = time.monotonic() + 30
    while model.lock.locked() and time.monotonic() < deadline:
        time.sleep(0.01)  # the worker stops at its next token
    assert not model.lock.locked()
    return model.llm.n_tokens - model.last["prompt_tokens"]


@needs_model
def test_streams_reuses_the_prefix_and_can_be_cancelled() -> None:
    from ragcli.generators.local import LocalGenerator

    gen = LocalGenerator(max_tokens=48)
    q1, q2 = "How do I rotate the on-call pager?", "Who do I call if PageRelay is down?"
    p1, p2 = _prompt(q1, SOURCES), _prompt(q2, SOURCES)
    asyncio.run(gen.warm())
    assert "instruction prefix" in gen.warm_note

    full = asyncio.run(_collect(gen, q1, p1))
    assert len(full) > 3 and "".join(full).strip()
    assert p1.usage["prompt_tokens"] > 60
    assert p1.usage["cached_tokens"] >= 30  # the instruction prefix from warm()
    whole = _generated(gen.path)

    # A follow-up question over the same sources: everything before the question is reused.
    asyncio.run(_collect(gen, q2, p2))
    assert p2.usage["cached_tokens"] >= p2.usage["prompt_tokens"] - 20

    # Closing the stream after three pieces stops generation at the next token.
    p1b = _prompt(q1, SOURCES)
    cut = asyncio.run(_collect(gen, q1, p1b, limit=3))
    assert cut == full[:3]  # greedy: the same start
    assert _generated(gen.path) < whole - 5

    # Cancelling the consuming task does too.
    async def cancel_after_first() -> int:
        got = asyncio.Event()
        seen: list[str] = []

        async def consume() -> None:
            async for piece in gen.stream(q1, _prompt(q1, SOURCES)):
                seen.append(piece)
                got.set()

        task = asyncio.create_task(consume())
        await got.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(seen)

    assert asyncio.run(cancel_after_first()) >= 1
    assert _generated(gen.path) < whole - 5
