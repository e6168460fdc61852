"""The embedders and answer generators a user can name: one small registry per family.

Each entry says the name as users type it (`local`, `openai:MODEL`, `extractive` ...), one
line about it, what it needs (an API key, an optional extra), and the factory that builds it
from Settings, named as a "module:attribute" string and imported only when that entry is
opened — so importing this module (config validation, `ragcli --help`) imports no model code
and no heavy library.

The entries live here, in core, because config validation reads them and core imports nothing
above it; ragcli/embedders/registry.py and ragcli/generators/registry.py open them. Adding an
embedder or a generator is one new module plus one entry below (or `register()` at run time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from ragcli.core.config import Settings


@dataclass(frozen=True)
class Entry:
    """One implementation users can name in a setting."""

    name: str  # what users type, or its prefix when the entry takes an argument
    summary: str  # one line about it
    target: str  # "module:attr[.attr]", a callable Settings -> instance, imported when opened
    arg: str = ""  # "MODEL": the name takes an argument after a colon (openai:MODEL)
    example: str = ""  # a full spelling with its argument, for messages
    note: str = ""  # the parenthesis after the name in the CLI help
    api_key: bool = False  # sends openai_api_key (OPENAI_API_KEY; a local server may need none)
    extra: str = ""  # the optional extra it needs (pip install 'ragcli[EXTRA]')

    @property
    def spelling(self) -> str:
        """The name as the help writes it: `local`, `openai:MODEL`."""
        return f"{self.name}:{self.arg}" if self.arg else self.name

    def matches(self, value: str) -> bool:
        return value.startswith(f"{self.name}:") if self.arg else value == self.name


def one_of(parts: list[str]) -> str:
    """'a', 'b' or 'c'."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


def resolve(target: str) -> Any:
    """The object a "module:attr[.attr]" target names (the module imported now)."""
    module, _, path = target.partition(":")
    obj: Any = importlib.import_module(module)
    for attr in path.split("."):
        obj = getattr(obj, attr)
    return obj


class Registry:
    """The entries of one family, in the order help and messages list them."""

    def __init__(self, setting: str, entries: Iterable[Entry] = ()) -> None:
        self.setting = setting  # the setting that names one: "embedder", "llm"
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            self.register(entry)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries.values())

    def register(self, entry: Entry) -> Entry:
        if entry.name in self._entries:
            raise ValueError(f"{self.setting} {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        del self._entries[name]

    def get(self, name: str) -> Entry | None:
        """The entry registered under `name` exactly (`openai`, not `openai:MODEL`)."""
        return self._entries.get(name)

    def find(self, value: str) -> Entry | None:
        """The entry a setting's value names (`openai:text-embedding-3-small` -> openai)."""
        return next((e for e in self._entries.values() if e.matches(value)), None)

    def choices(self) -> str:
        """The registered spellings, quoted: "'local' or 'openai:MODEL'"."""
        return one_of([f"'{e.spelling}'" for e in self._entries.values()])

    def check(self, value: str) -> Entry:
        """The entry `value` names, else one ConfigError line listing the registered names."""
        entry = self.find(value)
        if entry is None:
            raise ConfigError(f"unknown {self.setting} {value!r}: use {self.choices()}")
        if entry.arg and value == f"{entry.name}:":
            raise ConfigError(
                f"{self.setting} {value!r} needs a {entry.arg.lower()}, e.g. {entry.example}"
            )
        return entry

    def open(self, value: str, settings: Settings) -> Any:
        """Build the implementation `value` names (its module imported now)."""
        entry = self.find(value)
        if entry is None:
            raise UsageError(f"unknown {self.setting} {value!r}: use {self.choices()}")
        factory: Callable[[Settings], Any] = resolve(entry.target)
        return factory(settings)

    def help_text(self) -> str:
        """One line for the CLI help: every spelling, with its note."""
        parts = [f"{e.spelling} ({e.note})" if e.note else e.spelling for e in self.entries]
        # Two read "a, or b" (the help's wording since the first release); more, "a, b or c".
        text = f"{parts[0]}, or {parts[1]}" if len(parts) == 2 else one_of(parts)
        return text + "."

    def describe(self) -> list[str]:
        """One line per entry: spelling, summary and needs (for docs and `--help` epilogs)."""
        lines: list[str] = []
        for e in self.entries:
            needs = ["uses OPENAI_API_KEY"] if e.api_key else []
            needs += [f"needs pip install 'ragcli[{e.extra}]'"] if e.extra else []
            lines.append("; ".join([f"{e.spelling}: {e.summary}", *needs]))
        return lines


EMBEDDERS = Registry(
    "embedder",
    [
        Entry(
            "local",
            "all-MiniLM-L6-v2 on onnxruntime, in-process and offline (the default)",
            "ragcli.embedders.local:LocalEmbedder.from_settings",
        ),
        Entry(
            "local-int8",
            "the same model with int8 weights: faster ingest, slightly different rankings "
            "(docs/benchmarks.md)",
            "ragcli.embedders.local:LocalInt8Embedder.from_settings",
        ),
        Entry(
            "openai",
            "an OpenAI-compatible embeddings API: OPENAI_BASE_URL or RAGCLI_EMBED_ENDPOINTS",
            "ragcli.embedders.openai_embedder:OpenAIEmbedder.from_settings",
            arg="MODEL",
            example="openai:text-embedding-3-small",
            note="e.g. openai:text-embedding-3-small",
            api_key=True,
        ),
    ],
)

GENERATORS = Registry(
    "llm",
    [
        Entry(
            "extractive",
            "sentences quoted from the sources, no LLM (the default with nothing configured)",
            "ragcli.generators.extractive:ExtractiveGenerator.from_settings",
        ),
        Entry(
            "openai",
            "an OpenAI-compatible chat API: OPENAI_BASE_URL or RAGCLI_LLM_ENDPOINTS",
            "ragcli.generators.registry:open_openai_generator",
            note="OPENAI_BASE_URL/KEY",
            api_key=True,
        ),
        Entry(
            "local",
            "a GGUF model on llama.cpp in this process (SmolLM2-135M-Instruct by default)",
            "ragcli.generators.local:LocalGenerator.from_settings",
            note="llama.cpp in-process",
            extra="local",
        ),
    ],
)
