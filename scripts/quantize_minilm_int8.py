#!/usr/bin/env python3
"""Maintainer step: build the int8 variant of the embedded embedder (`embedder = "local-int8"`)
with onnxruntime's own quantizer, from the committed fp32 graph and the installed weights.

NOT part of `make install` (it needs the `onnx` package, which ragcli does not depend on).
Run it with onnx next to the onnxruntime ragcli ships with, outside the project's venv:

    .venv/bin/python -m pip install --no-deps --target /tmp/onnx-site onnx==1.23.2 ml_dtypes==0.6.0
    PYTHONPATH=/tmp/onnx-site .venv/bin/python scripts/quantize_minilm_int8.py          # write
    PYTHONPATH=/tmp/onnx-site .venv/bin/python scripts/quantize_minilm_int8.py --check  # compare

What it does:
1. Loads ragcli/models/all-MiniLM-L6-v2/model.onnx (next to its installed model.safetensors)
   in onnxruntime with basic graph optimisations only, and saves the result: constant folding
   turns each weight's Transpose into a plain [in, out] matrix, which the quantizer needs.
2. `onnxruntime.quantization.quantize_dynamic`: op types MatMul only, per_channel=True,
   weight_type=QInt8 (symmetric, scale per output column), activations quantized at run time
   (DynamicQuantizeLinear, uint8). The word/position/type embedding tables stay fp32.
3. Checks every int8 matrix byte for byte against ragcli.embedders.int8_weights.derive (the
   numpy derivation `make install` runs) and rewrites it as external data into
   model-int8.weights at the offset derive puts it; rewrites every fp32 tensor that is a
   tensor of model.safetensors (the embedding tables) as external data into that file, as
   model.onnx does. Scales, zero points, biases and LayerNorm parameters stay inline.
4. Checks the int8 vectors against fp32's on a few texts (lowest cosine, at least 0.98),
   then writes model-int8.onnx, model-int8.weights and PROVENANCE-int8.md and prints their
   sha256 (the weights' must equal int8_weights.WEIGHTS_SHA256, which `make install`
   verifies). `--check` rebuilds into a temporary directory and compares bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragcli.embedders import int8_weights as q8  # noqa: E402
from ragcli.embedders import model_files as mf  # noqa: E402  (stdlib only)

PER_CHANNEL = True
PROVENANCE = "PROVENANCE-int8.md"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fold(work: Path) -> Path:
    """The fp32 graph with its weight transposes folded (onnxruntime, basic level)."""
    import onnxruntime as ort

    for name in (mf.GRAPH_FILE, mf.WEIGHTS_FILE):
        shutil.copyfile(mf.package_model_dir() / name, work / name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(work / "folded.onnx")
    ort.InferenceSession(str(work / mf.GRAPH_FILE), opts, providers=["CPUExecutionProvider"])
    return work / "folded.onnx"


def quantize(folded: Path, work: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / "quantized.onnx"
    quantize_dynamic(
        str(folded),
        str(out),
        per_channel=PER_CHANNEL,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    return out


def matrix_of(model, weight_name: str) -> str:  # noqa: ANN001 - onnx.ModelProto
    """The safetensors name of the matrix a quantized initializer came from (its MatMul's)."""
    for node in model.graph.node:
        if node.op_type == "MatMulInteger" and node.input[1] == weight_name:
            path = node.name.split("/model/", 1)[1].rsplit("/MatMul", 1)[0]
            return path.replace("/", ".") + ".weight"
    sys.exit(f"no MatMulInteger reads {weight_name}")


def external(t, location: str, offset: int, length: int) -> None:  # noqa: ANN001
    import onnx

    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    del t.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = key, value


def relink(quantized: Path, out: Path) -> None:
    """int8 matrices into model-int8.weights, fp32 tables into model.safetensors."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(quantized))
    weights = mf.package_model_dir() / mf.WEIGHTS_FILE
    derived = q8.derive(weights)
    base, header = q8.read_header(weights)
    where = {name: (offset, length) for name, offset, length in q8.layout(header)}
    raw = weights.read_bytes()
    linked = set()
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2:
            name = matrix_of(model, t.name)
            offset, length = where[name]
            if numpy_helper.to_array(t).tobytes() != derived[offset : offset + length]:
                sys.exit(f"{t.name}: the quantizer's bytes differ from int8_weights.derive")
            external(t, q8.WEIGHTS_FILE, offset, length)
            linked.add(name)
        elif t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2:
            key = t.name.removeprefix("model.")
            entry = header.get(key)
            start, end = entry["data_offsets"] if entry else (0, 0)
            if (
                entry is None
                or raw[base + start : base + end] != numpy_helper.to_array(t).tobytes()
            ):
                sys.exit(f"fp32 matrix {t.name} is not a tensor of {mf.WEIGHTS_FILE}")
            external(t, mf.WEIGHTS_FILE, base + start, end - start)
    if linked != set(q8.MATRICES):
        sys.exit(f"quantized matrices differ from int8_weights.MATRICES: {sorted(linked)}")
    big = [(t.name, len(t.raw_data)) for t in model.graph.initializer if len(t.raw_data) > 8192]
    if big:
        sys.exit(f"large initializers would be inline: {big}")
    model.doc_string = (
        f"sentence-transformers/{mf.MODEL_ID}, int8 (onnxruntime quantize_dynamic, MatMul, "
        f"per-channel QInt8); int8 weights: external data in {q8.WEIGHTS_FILE} (derived at "
        f"install, sha256 {q8.WEIGHTS_SHA256}); embeddings: external data in {mf.WEIGHTS_FILE}. "
        "Rebuild: scripts/quantize_minilm_int8.py"
    )
    onnx.save(model, str(out / q8.GRAPH_FILE))
    (out / q8.WEIGHTS_FILE).write_bytes(derived)


def agreement(out: Path) -> float:
    """Lowest cosine between fp32 and int8 vectors of a few texts (one long, truncated)."""
    sys.path.insert(0, str(REPO))
    from ragcli.embedders.local import LocalEmbedder, LocalInt8Embedder

    texts = ["a", "How do I rebuild the index?", "Größe ändern — 東京 " * 40, "x " * 300]
    fp32 = LocalEmbedder().embed(texts)
    int8 = LocalInt8Embedder(out).embed(texts)
    return float((fp32 * int8).sum(axis=1).min())


def build(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        relink(quantize(fold(work), work), out)
    for name in (mf.GRAPH_FILE, mf.WEIGHTS_FILE, mf.TOKENIZER_FILE):
        if not (out / name).exists():
            shutil.copyfile(mf.package_model_dir() / name, out / name)
    cos = agreement(out)
    print(f"min cosine int8 vs fp32 on the check texts: {cos:.5f}")
    if cos < 0.98:
        sys.exit("int8 vectors too far from fp32")
    (out / PROVENANCE).write_text(provenance(out / q8.GRAPH_FILE, cos), "utf-8")


def provenance(graph: Path, cos: float) -> str:
    import numpy
    import onnx
    import onnxruntime

    return f"""# all-MiniLM-L6-v2, int8 (`embedder = "local-int8"`) — provenance

This file is written by `scripts/quantize_minilm_int8.py`; do not edit by hand.

- Source: the fp32 graph `{mf.GRAPH_FILE}` over the upstream `{mf.WEIGHTS_FILE}` (sha256
  `{mf.WEIGHTS_SHA256}`; see PROVENANCE.md), same licence (Apache-2.0), same tokenizer.
- Quantizer: onnxruntime's own, `onnxruntime.quantization.quantize_dynamic`, on the graph
  with its weight transposes folded (onnxruntime, basic optimisation level):
  `op_types_to_quantize=["MatMul"]`, `per_channel=True`, `weight_type=QuantType.QInt8`
  (symmetric, one scale per output column; activations quantized at run time to uint8 by
  `DynamicQuantizeLinear`, one scale per tensor). The embedding tables stay fp32.
- Vectors: mean pooling and L2 normalisation as the fp32 model; lowest cosine to fp32 on the
  script's check texts: {cos:.5f}. Retrieval quality: docs/benchmarks.md.

## Files

| file | bytes | sha256 | |
| --- | ---: | --- | --- |
| `{q8.GRAPH_FILE}` | {graph.stat().st_size:,} | `{sha256(graph)}` | committed |
| `{q8.WEIGHTS_FILE}` | {q8.WEIGHTS_SIZE:,} | `{q8.WEIGHTS_SHA256}` | derived, git-ignored |

`{q8.GRAPH_FILE}` reads its 36 int8 weight matrices as external data from `{q8.WEIGHTS_FILE}`
and its embedding tables from `{mf.WEIGHTS_FILE}`; scales, zero points, biases and LayerNorm
parameters are inline. `python -m ragcli.embedders.model_files install` (part of `make
install`) derives `{q8.WEIGHTS_FILE}` from the verified `{mf.WEIGHTS_FILE}` with numpy
(ragcli/embedders/int8_weights.py: per output column scale = float32(2·max|B| / 254),
q = round(B / scale)) and checks its sha256. The script checked those bytes against the
quantizer's own output, matrix by matrix.

## Versions used

- onnxruntime {onnxruntime.__version__}
- onnx {onnx.__version__} (the quantizer's dependency; not a dependency of ragcli)
- numpy {numpy.__version__}
- python {sys.version.split()[0]}

## Rebuild

```
.venv/bin/python -m pip install --no-deps --target /tmp/onnx-site onnx=={onnx.__version__} ml_dtypes
PYTHONPATH=/tmp/onnx-site .venv/bin/python scripts/quantize_minilm_int8.py  # writes
PYTHONPATH=/tmp/onnx-site .venv/bin/python scripts/quantize_minilm_int8.py --check
```
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rebuild and compare bytes")
    args = parser.parse_args()
    mf.check(full=True)
    pkg = mf.package_model_dir()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            build(out)
            same = (out / q8.GRAPH_FILE).read_bytes() == (pkg / q8.GRAPH_FILE).read_bytes()
            print(f"{q8.GRAPH_FILE}: {'identical' if same else 'DIFFERS'}")
            same_doc = (out / PROVENANCE).read_text() == (pkg / PROVENANCE).read_text()
            print(f"{PROVENANCE}: {'identical' if same_doc else 'DIFFERS'}")
            digest = sha256(out / q8.WEIGHTS_FILE)
            ok = digest == q8.WEIGHTS_SHA256
            print(f"{q8.WEIGHTS_FILE}: sha256 {digest} {'ok' if ok else 'DIFFERS'}")
            return 0 if same and ok else 1
    build(pkg)
    for name in (q8.GRAPH_FILE, q8.WEIGHTS_FILE):
        path = pkg / name
        print(f"{name}: {path.stat().st_size:,} bytes, sha256 {sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
