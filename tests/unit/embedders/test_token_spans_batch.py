"""`token_spans_batch` gives every text exactly what `token_spans` gave it one text at a time:
on the real all-MiniLM-L6-v2 tokenizer (encode_batch) and on real tiktoken (cl100k and o200k,
from the BPE files ragcli ships), against the old per-token tiktoken code kept in
tests/support/chunking_reference.py."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.embedders.local import LocalEmbedder
from ragcli.embedders.openai_embedder import OpenAIEmbedder
from tests.support.chunking_reference import tiktoken_token_spans

LOCAL = LocalEmbedder()  # the tokenizer only: no ONNX session is loaded
CL100K = OpenAIEmbedder("text-embedding-3-small")  # cl100k_base
O200K = OpenAIEmbedder("some-server-model", dimensions=8)  # unknown to tiktoken: o200k_base
OPENAI = (CL100K, O200K)

# Every character str.isspace() knows (the vectorised trimming must know the same set).
WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())

FIXED = [
    "",
    " ",
    "\n\n",
    "x",
    "Rotate the pager.\n\nThen call Ana.",
    "pager\n\nThen",
    "  leading and trailing spaces  ",
    "tabs\tand\x0bvertical\x0cfeeds\r\nand\x1cseparators\x1d\x1e\x1f end",
    "naïve café — “quoted” déjà vu; Ærøskøbing",
    "emoji 🎉👩‍💻🇫🇷 and ZWJ sequences, then text",
    "中文字符，日本語のテキスト、한국어 텍스트。",
    "e\u0301 combining marks a\u0308\u0323 stacked",
    "\u3000ideographic\u3000space\xa0nbsp\u2028line\u2029para\x85nel",
    "code:\n    def f(x):\n        return x  # indented\n\n\n\nfour breaks",
    "a" * 3000,
    "word " * 1500,
    " " * 500 + "x" + "\n" * 300,
    "".join(f"{c}x" for c in WHITESPACE),  # each whitespace character between letters
    "🎉" * 200,
]

MIXED = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("ab .,;!?\n\t-é中🎉\u3000\xa0")),
        st.characters(exclude_categories=("Cs",)),  # no lone surrogates: files are UTF-8
    ),
    max_size=300,
)


def _texts(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    pieces = ["word", "Word", " ", "  ", "\n", "\n\n", "\t", ".", ";", "é", "中文", "🎉", "\xa0"]
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 120))) for _ in range(n)]


@pytest.mark.parametrize("emb", OPENAI, ids=["cl100k", "o200k"])
def test_tiktoken_batch_matches_the_per_token_code_on_hard_texts(emb: OpenAIEmbedder) -> None:
    enc = emb._enc()
    expected = [tiktoken_token_spans(enc, t) for t in FIXED]
    assert emb.token_spans_batch(FIXED) == expected
    assert [emb.token_spans(t) for t in FIXED] == expected  # one text is a batch of one
    assert emb.token_spans_batch(list(reversed(FIXED))) == expected[::-1]


@pytest.mark.parametrize("emb", OPENAI, ids=["cl100k", "o200k"])
def test_tiktoken_batch_of_many_texts_and_a_long_one(emb: OpenAIEmbedder) -> None:
    texts = _texts(1, 400)
    texts.append("".join(_texts(2, 400)))  # ~30k characters, not ASCII
    got = emb.token_spans_batch(texts)
    assert got == [tiktoken_token_spans(emb._enc(), t) for t in texts]
    assert emb.token_spans_batch([]) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(MIXED, max_size=6))
def test_property_tiktoken_batch_is_the_per_token_code(texts: list[str]) -> None:
    for emb in OPENAI:
        assert emb.token_spans_batch(texts) == [tiktoken_token_spans(emb._enc(), t) for t in texts]


def test_local_batch_matches_one_text_at_a_time() -> None:
    texts = [*FIXED, *_texts(3, 300)]
    expected = [LOCAL.token_spans(t) for t in texts]
    assert LOCAL.token_spans_batch(texts) == expected
    assert LOCAL.token_spans_batch(tuple(texts[:5])) == expected[:5]  # any sequence
    assert LOCAL.token_spans_batch([]) == []
    # the tokenizer's own offsets, as tuples: "pager" is two wordpieces
    assert LOCAL.token_spans("Rotate the pager.") == [(0, 6), (7, 10), (11, 15), (15, 16), (16, 17)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(MIXED, max_size=6))
def test_property_local_batch_is_one_text_at_a_time(texts: list[str]) -> None:
    assert LOCAL.token_spans_batch(texts) == [LOCAL.token_spans(t) for t in texts]
