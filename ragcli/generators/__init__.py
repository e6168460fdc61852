"""Answer generators: the offline extractive default, OpenAI-compatible servers and a local
llama.cpp model (the optional `local` extra). Which one a setting names, and how to add one:
ragcli/core/registry.py (GENERATORS) and ragcli/generators/registry.py."""

from __future__ import annotations

from ragcli.generators.registry import open_generator

__all__ = ["open_generator"]
