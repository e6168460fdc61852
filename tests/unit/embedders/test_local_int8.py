"""`embedder = "local-int8"`: all-MiniLM-L6-v2 with int8 weight matrices, their file derived
at install time from the verified fp32 weights (ragcli/embedders/int8_weights.py).

Runs offline on the real model: `make install` derives model-int8.weights; when it is missing
these tests fail with ModelNotInstalledError, they do not skip.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ragcli.core.config import load_settings
from ragcli.embedders import int8_weights, model_files, settings_for_index
from ragcli.embedders.local import LocalEmbedder, LocalInt8Embedder
from ragcli.embedders.model_files import ModelNotInstalledError
from ragcli.embedders.registry import open_embedder
from ragcli.providers.model_install import sha256_file

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.json"
REFERENCE = json.loads(FIXTURE.read_text(encoding="utf-8"))
REF_TEXTS = [item["text"] for item in REFERENCE["items"]]
REF_VECTORS = np.array([item["vector"] for item in REFERENCE["items"]], dtype=np.float32)


@pytest.fixture(scope="module")
def int8() -> LocalInt8Embedder:
    model_files.check_int8()
    return LocalInt8Embedder().load()


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = arr.astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def small_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Every matrix the int8 file holds, at a small size ([out, in] as in HF), one with a zero
    output row and one with a single outlier."""
    rng = np.random.default_rng(seed)
    tensors = {
        name: rng.normal(0, 0.05, (6, 4)).astype(np.float32) for name in int8_weights.MATRICES
    }
    first, second = int8_weights.MATRICES[:2]
    tensors[first][2] = 0.0
    tensors[second][1, 3] = 3.0
    return tensors


# -- the derivation ---------------------------------------------------------------------


def test_derive_quantizes_each_output_column_symmetrically(tmp_path):
    tensors = small_weights()
    write_safetensors(tmp_path / "w.safetensors", tensors)
    data = int8_weights.derive(tmp_path / "w.safetensors")
    assert len(data) == len(int8_weights.MATRICES) * 6 * 4
    for i, name in enumerate(int8_weights.MATRICES):
        b = tensors[name].T  # [in, out]: the MatMul's B, one scale per output column
        q = np.frombuffer(data[i * 24 : (i + 1) * 24], dtype=np.int8).reshape(b.shape)
        absmax = np.abs(b).max(axis=0)
        scale = np.where(absmax > 0, absmax / 127, 1.0)
        assert (np.abs(q).max(axis=0) == np.where(absmax > 0, 127, 0)).all(), name
        assert (np.abs(q * scale - b) <= scale / 2 + 1e-7).all(), name
    zero_row = np.frombuffer(data[:24], dtype=np.int8).reshape(4, 6)[:, 2]
    assert (zero_row == 0).all()
    outlier = np.frombuffer(data[24:48], dtype=np.int8).reshape(4, 6)[:, 1]
    assert outlier[3] == 127 and np.abs(outlier[:3]).max() < 20  # one scale per column


def test_derived_weights_are_the_recorded_ones():
    # The bytes onnxruntime's quantizer produced (scripts/quantize_minilm_int8.py checked
    # them byte for byte), from the real fp32 weights.
    import hashlib

    data = int8_weights.derive(model_files.weights_path())
    assert len(data) == int8_weights.WEIGHTS_SIZE
    assert hashlib.sha256(data).hexdigest() == int8_weights.WEIGHTS_SHA256


def test_install_refuses_weights_that_derive_to_other_bytes(tmp_path):
    write_safetensors(tmp_path / "w.safetensors", small_weights())
    with pytest.raises(RuntimeError, match="expected"):
        int8_weights.install(tmp_path, tmp_path / "w.safetensors", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_model_files_install_derives_the_int8_weights(tmp_path):
    dest = tmp_path / "model"
    model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    weights = dest / int8_weights.WEIGHTS_FILE
    assert sha256_file(weights) == int8_weights.WEIGHTS_SHA256
    assert (dest / int8_weights.GRAPH_FILE).read_bytes() == (
        model_files.package_model_dir() / int8_weights.GRAPH_FILE
    ).read_bytes()
    model_files.check_int8(directory=dest)
    inode = weights.stat().st_ino
    model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    assert weights.stat().st_ino == inode  # a correct file is left alone
    weights.write_bytes(b"\0" * int8_weights.WEIGHTS_SIZE)  # right size, wrong bytes
    model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    assert sha256_file(weights) == int8_weights.WEIGHTS_SHA256
    vec = LocalInt8Embedder(model_dir=dest).embed(REF_TEXTS[:1])
    assert float(vec[0] @ REF_VECTORS[0]) > 0.98


def test_missing_int8_weights_is_a_setup_error_and_fp32_still_works(tmp_path):
    dest = tmp_path / "model"
    model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    (dest / int8_weights.WEIGHTS_FILE).unlink()
    missing = "int8 weights .* not installed.*ragcli model install"
    with pytest.raises(ModelNotInstalledError, match=missing):
        LocalInt8Embedder(model_dir=dest).embed(["x"])
    (dest / int8_weights.WEIGHTS_FILE).write_bytes(b"\0" * 10)
    with pytest.raises(ModelNotInstalledError, match="incomplete"):
        LocalInt8Embedder(model_dir=dest).embed(["x"])
    assert LocalEmbedder(model_dir=dest).embed(["x"]).shape == (1, 384)


# -- the embedder -----------------------------------------------------------------------


def test_int8_vectors_are_close_to_fp32_but_their_own(int8):
    vecs = int8.embed(REF_TEXTS)
    assert vecs.dtype == np.float32 and vecs.shape == (len(REF_TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    cos = (vecs * REF_VECTORS).sum(axis=1)
    assert cos.min() > 0.97 and cos.mean() > 0.99, cos  # measured: min 0.977, mean 0.991
    assert cos.max() < 0.9999, "the int8 graph was not the one that ran"
    # One text per run: a text's vector does not depend on the others embedded with it.
    for i in (1, 5):
        np.testing.assert_allclose(int8.embed(REF_TEXTS[i : i + 1])[0], vecs[i], atol=1e-6)


def test_int8_has_its_own_cache_id_and_opens_from_settings():
    fp32, q8 = LocalEmbedder(), LocalInt8Embedder()
    assert fp32.cache_id == "local:all-MiniLM-L6-v2"
    assert q8.cache_id == "local-int8:all-MiniLM-L6-v2"
    opened = open_embedder(load_settings({"embedder": "local-int8"}, environ={}))
    assert isinstance(opened, LocalInt8Embedder)
    base = load_settings(environ={})
    assert settings_for_index(base, q8.cache_id).embedder == "local-int8"
    assert settings_for_index(base, fp32.cache_id).embedder == "local"
