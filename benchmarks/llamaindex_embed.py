"""LlamaIndex's embedding with its defaults, timed: run by benchmarks/ingest_remote.py with the
Python of the LlamaIndex venv (`make bench-deps`: benchmarks/.venv-llamaindex), never with
ragcli's (ragcli's venv has no llama_index).

    benchmarks/.venv-llamaindex/bin/python benchmarks/llamaindex_embed.py --base-url URL \\
        (--texts TEXTS.json | --files DIR) --out RESULT.json

`OpenAIEmbedding(model=..., api_base=..., api_key=...)` with every other setting its default
(embed_batch_size 100, num_workers None, max_retries 10, the dimensions the model returns),
then `await embed_model.aget_text_embedding_batch(texts)`: its async default, every batch
submitted at once through asyncio.gather.

--texts: a JSON list of the texts to embed (ragcli's chunks of the corpus).
--files: the files read with SimpleDirectoryReader and split by a default SentenceSplitter
(chunk_size 1024, overlap 200), each node embedded as VectorStoreIndex would embed it
(`get_content(metadata_mode=MetadataMode.EMBED)`); the reading and splitting are timed apart.

The result: `embed_s` from just before the `await` to the last vector (the AsyncOpenAI client
is built inside it, on the first request, as in LlamaIndex's own use), the monotonic stamps of
that interval and of the process's first line, the import and split times, and the versions.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

MODEL = "text-embedding-3-small"
PACKAGES = ("llama-index-core", "llama-index-embeddings-openai", "openai", "httpx", "tiktoken")


def split_files(directory: str) -> tuple[list[str], dict[str, Any]]:
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode

    t = time.monotonic()
    documents = SimpleDirectoryReader(directory, recursive=True).load_data()
    read_s = time.monotonic() - t
    t = time.monotonic()
    nodes = SentenceSplitter().get_nodes_from_documents(documents)
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    return texts, {
        "documents": len(documents),
        "read_s": read_s,
        "split_s": time.monotonic() - t,
    }


async def embed(model: Any, texts: list[str]) -> tuple[list[list[float]], float, float]:
    start = time.monotonic()
    vectors = await model.aget_text_embedding_batch(texts)
    return vectors, start, time.monotonic()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default="bench")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--texts", help="a JSON list of texts")
    source.add_argument("--files", help="a folder, read and split by LlamaIndex")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    t = time.monotonic()
    from llama_index.embeddings.openai import OpenAIEmbedding

    import_s = time.monotonic() - t
    split: dict[str, Any] = {}
    if args.texts:
        texts = json.loads(Path(args.texts).read_text("utf-8"))
    else:
        texts, split = split_files(args.files)
    model = OpenAIEmbedding(model=MODEL, api_base=args.base_url, api_key=args.api_key)
    vectors, start, end = asyncio.run(embed(model, texts))
    dims = sorted({len(v) for v in vectors})
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    result = {
        "texts": len(texts),
        "vectors": len(vectors),
        "dims": dims,
        "embed_batch_size": model.embed_batch_size,
        "num_workers": model.num_workers,
        "max_retries": model.max_retries,
        "import_s": import_s,
        **split,
        "embed_s": end - start,
        "embed_start_at": start,
        "embed_end_at": end,
        "process_started_at": STARTED,
        "versions": versions,
    }
    Path(args.out).write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    main()
