"""The int8 variant of the embedded embedder (`embedder = "local-int8"`): its weight file,
derived at install time from the verified ``model.safetensors``.

The committed graph ``model-int8.onnx`` is all-MiniLM-L6-v2 quantized by onnxruntime's own
quantizer (``scripts/quantize_minilm_int8.py``: ``quantize_dynamic``, MatMul only, per-channel
symmetric int8 weights, activations quantized at run time). Its 36 int8 weight matrices are
ONNX external data in ``model-int8.weights``, which ``python -m ragcli.embedders.model_files
install`` (part of ``make install``) writes next to it: `derive` repeats the quantizer's
arithmetic with numpy — for each matrix B = Wᵀ ([in, out], as onnxruntime folds it), per
output column scale = float32(2·max|B| / 254) and q = round(B / scale) — and the result must
match the sha256 that the maintainer script recorded after checking it byte for byte against
the quantizer's own output. The embedding tables are external data into ``model.safetensors``,
as in ``model.onnx``; scales, zero points, biases and LayerNorm parameters are inline.

Standard library at import time (this module is on the CLI's cold path); numpy only in
`derive`.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from ragcli.providers.model_install import sha256_file

GRAPH_FILE = "model-int8.onnx"
WEIGHTS_FILE = "model-int8.weights"
WEIGHTS_SHA256 = "ef995e1764ea73bb4a03bc6c9838ed460dff0be8ae1322d08614f3d4ad6f97e2"
LAYERS = 6
PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
# The safetensors tensors quantized, in the order their bytes follow each other in the file.
MATRICES = tuple(f"encoder.layer.{i}.{p}.weight" for i in range(LAYERS) for p in PARTS)
# 6 layers × (4 × 384·384 + 2 × 384·1536) int8 bytes; every matrix a multiple of 64 bytes long.
WEIGHTS_SIZE = LAYERS * (4 * 384 * 384 + 2 * 384 * 1536)


def layout(header: dict[str, dict]) -> list[tuple[str, int, int]]:
    """(safetensors name, offset in WEIGHTS_FILE, length) of each matrix."""
    out, offset = [], 0
    for name in MATRICES:
        rows, cols = header[name]["shape"]
        out.append((name, offset, rows * cols))
        offset += rows * cols
    return out


def read_header(path: Path) -> tuple[int, dict[str, dict]]:
    """safetensors: 8-byte little-endian header length, then the JSON header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return 8 + n, json.loads(f.read(n))


def derive(safetensors: Path) -> bytes:
    """The bytes of WEIGHTS_FILE, computed from the fp32 weights."""
    import numpy as np

    base, header = read_header(safetensors)
    data = np.memmap(safetensors, dtype=np.uint8, mode="r")
    parts = []
    for name, _, _ in layout(header):
        start, end = header[name]["data_offsets"]
        w = data[base + start : base + end].view(np.float32).reshape(header[name]["shape"])
        b = np.ascontiguousarray(w.T)  # [in, out], the MatMul's B
        absmax = np.maximum(np.abs(np.minimum(b.min(axis=0), 0)), np.maximum(b.max(axis=0), 0))
        scale = absmax.astype(np.float64) * 2 / 254
        # onnxruntime's rule for an all-zero column (a scale below float32's tiny): scale 1.
        scale = np.where(scale < np.finfo(np.float32).tiny, 1.0, scale).astype(np.float32)
        parts.append(np.clip((b / scale).round(), -128, 127).astype(np.int8).tobytes())
    return b"".join(parts)


def install(directory: Path, safetensors: Path, quiet: bool = False) -> Path:
    """Write WEIGHTS_FILE in `directory` from `safetensors` (kept when already right)."""
    dest = directory / WEIGHTS_FILE
    if (
        dest.is_file()
        and dest.stat().st_size == WEIGHTS_SIZE
        and sha256_file(dest) == WEIGHTS_SHA256
    ):
        return dest
    tmp = dest.with_name(f".{WEIGHTS_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(derive(safetensors))
        digest = sha256_file(tmp)
        if digest != WEIGHTS_SHA256:
            raise RuntimeError(
                f"int8 weights derived from {safetensors} have sha256 {digest}, expected "
                f"{WEIGHTS_SHA256}: scripts/quantize_minilm_int8.py --check says why"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if not quiet:
        print(f"int8 weights: {dest} (sha256 ok)")
    return dest


def problem(directory: Path) -> str | None:
    """What is missing for the int8 model in `directory`, or None."""
    if not (directory / GRAPH_FILE).is_file():
        return f"int8 graph {directory / GRAPH_FILE} is missing"
    w = directory / WEIGHTS_FILE
    if not w.is_file():
        return f"int8 weights {w} are not installed"
    if w.stat().st_size != WEIGHTS_SIZE:
        return f"int8 weights {w} are incomplete ({w.stat().st_size} of {WEIGHTS_SIZE} bytes)"
    return None
