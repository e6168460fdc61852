"""Whether the optional local LLM is here: the llama-cpp-python extra and the SmolLM2 GGUF
(`make install-local`). Tests that need both are skipped without them; with
RAGCLI_REQUIRE_LOCAL=1 (tests/conftest.py) such a skip fails instead."""

from __future__ import annotations

import importlib.util

import pytest

from ragcli.generators import local_model

HAVE_EXTRA = importlib.util.find_spec("llama_cpp") is not None
HAVE_MODEL = local_model.default_model_path().is_file()
needs_model = pytest.mark.skipif(
    not (HAVE_EXTRA and HAVE_MODEL),
    reason="needs the optional llama-cpp-python extra and the SmolLM2 GGUF: make install-local",
)
