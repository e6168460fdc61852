"""Settings: defaults < ragcli.toml < environment (RAGCLI_*, OPENAI_*) < command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ragcli.core.errors import ConfigError
from ragcli.core.registry import EMBEDDERS, GENERATORS, one_of
from ragcli.core.urls import ChromaAccess, check_redis_url, parse_chroma_url

CONFIG_FILE_NAME = "ragcli.toml"
# The closed sets of values a string setting takes; validation reads them (`_CHOICES`).
RetrievalMode = Literal["dense", "lexical", "hybrid"]
SearchMethod = Literal["hnsw", "exact"]  # HNSW (approximate) or exact (brute-force) vectors
PromptLayout = Literal["auto", "prefix", "ranked"]
CacheName = Literal["embedding", "retrieval", "answer"]
# `Authorization: Bearer TOKEN`, or the token as is in `X-Chroma-Token` (core/urls.py)
ChromaTokenHeader = Literal["Authorization", "X-Chroma-Token"]
DaemonMode = Literal["on", "off"]  # `ask` through the data directory's warm daemon, or never
CACHE_NAMES: frozenset[str] = frozenset(get_args(CacheName))


def default_data_dir() -> Path:
    """Per-user data directory (XDG on Linux): never inside the project, never shared by tests."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "ragcli"


@dataclass(frozen=True)
class Settings:
    """Every knob ragcli has. Field metadata names the environment variable(s) that set it."""

    data_dir: Path = field(default_factory=default_data_dir, metadata={"env": ("RAGCLI_HOME",)})
    embedder: str = field(default="local", metadata={"env": ("RAGCLI_EMBEDDER",)})
    # Remote embedders (`openai:MODEL`): one coherent set of knobs, see ragcli/embedders/
    # openai_embedder.py. rpm/tpm 0: no client-side pacing; dimensions 0: the model's own.
    embed_concurrency: int = field(default=8, metadata={"env": ("RAGCLI_EMBED_CONCURRENCY",)})
    embed_batch_size: int = field(default=512, metadata={"env": ("RAGCLI_EMBED_BATCH_SIZE",)})
    embed_rpm: int = field(default=0, metadata={"env": ("RAGCLI_EMBED_RPM",)})
    embed_tpm: int = field(default=0, metadata={"env": ("RAGCLI_EMBED_TPM",)})
    embed_dimensions: int = field(default=0, metadata={"env": ("RAGCLI_EMBED_DIMENSIONS",)})
    embed_max_retries: int = field(default=6, metadata={"env": ("RAGCLI_EMBED_MAX_RETRIES",)})
    # Seconds a provider request (embeddings or chat) may wait for the next bytes of an answer.
    provider_timeout: float = field(
        default=120.0, metadata={"env": ("RAGCLI_PROVIDER_TIMEOUT", "RAGCLI_TIMEOUT")}
    )
    llm: str = field(default="", metadata={"env": ("RAGCLI_LLM",)})
    llm_model: str = field(default="gpt-4o-mini", metadata={"env": ("RAGCLI_LLM_MODEL",)})
    # `llm = local`: a GGUF file for llama.cpp ("" = the SmolLM2 model of `make install-local`).
    local_model: str = field(default="", metadata={"env": ("RAGCLI_LOCAL_MODEL",)})
    # prefix: canonical source order, question last (prefix-cache friendly); ranked: best
    # first; auto: prefix for generators that send the prompt to a model.
    prompt_layout: PromptLayout = field(default="auto", metadata={"env": ("RAGCLI_PROMPT_LAYOUT",)})
    openai_base_url: str = field(
        default="", metadata={"env": ("RAGCLI_OPENAI_BASE_URL", "OPENAI_BASE_URL")}
    )
    openai_api_key: str = field(
        default="", repr=False, metadata={"env": ("RAGCLI_OPENAI_API_KEY", "OPENAI_API_KEY")}
    )
    # Several OpenAI-compatible endpoints used as one (providers/endpoints.py): base URLs, comma-
    # separated (a list in ragcli.toml), sharing openai_api_key. Empty: openai_base_url alone.
    llm_endpoints: str = field(default="", metadata={"env": ("RAGCLI_LLM_ENDPOINTS",)})
    embed_endpoints: str = field(default="", metadata={"env": ("RAGCLI_EMBED_ENDPOINTS",)})
    # Hedged LLM requests: "auto" (the endpoint's recent p95 TTFT), milliseconds, or 0/off.
    hedge_delay_ms: str = field(default="auto", metadata={"env": ("RAGCLI_HEDGE_DELAY_MS",)})
    llm_attempts: int = field(default=3, metadata={"env": ("RAGCLI_LLM_ATTEMPTS",)})
    chunk_tokens: int = field(default=200, metadata={"env": ("RAGCLI_CHUNK_TOKENS",)})
    chunk_overlap: int = field(default=40, metadata={"env": ("RAGCLI_CHUNK_OVERLAP",)})
    k: int = field(default=5, metadata={"env": ("RAGCLI_K",)})
    max_context_tokens: int = field(default=1500, metadata={"env": ("RAGCLI_MAX_CONTEXT_TOKENS",)})
    hnsw_m: int = field(default=16, metadata={"env": ("RAGCLI_HNSW_M",)})
    hnsw_ef_construction: int = field(
        default=128, metadata={"env": ("RAGCLI_HNSW_EF_CONSTRUCTION",)}
    )
    hnsw_ef_search: int = field(default=64, metadata={"env": ("RAGCLI_HNSW_EF_SEARCH",)})
    search: SearchMethod = field(default="hnsw", metadata={"env": ("RAGCLI_SEARCH",)})
    retrieval: RetrievalMode = field(default="hybrid", metadata={"env": ("RAGCLI_RETRIEVAL",)})
    hybrid_weight: float = field(default=1.0, metadata={"env": ("RAGCLI_HYBRID_WEIGHT",)})
    connection_reuse: bool = field(default=True, metadata={"env": ("RAGCLI_CONNECTION_REUSE",)})
    server: str = field(default="", metadata={"env": ("RAGCLI_SERVER",)})
    # Shared backends for several replicas (docs/deployment.md): a Chroma server instead of the
    # data dir's embedded index, and Redis instead of the data dir's SQLite caches.
    chroma_url: str = field(default="", metadata={"env": ("RAGCLI_CHROMA_URL",)})
    # A Chroma server behind an authenticating proxy (`chroma run` checks no one): the token
    # (config or environment only, never a flag: a command line is visible in `ps`), the header
    # it travels in, and for https:// with a private CA, that CA's PEM file ("": the default).
    chroma_token: str = field(default="", repr=False, metadata={"env": ("RAGCLI_CHROMA_TOKEN",)})
    chroma_token_header: ChromaTokenHeader = field(
        default="Authorization", metadata={"env": ("RAGCLI_CHROMA_TOKEN_HEADER",)}
    )
    chroma_ca_file: str = field(default="", metadata={"env": ("RAGCLI_CHROMA_CA_FILE",)})
    redis_url: str = field(default="", repr=False, metadata={"env": ("RAGCLI_REDIS_URL",)})
    no_cache: str = field(default="", metadata={"env": ("RAGCLI_NO_CACHE",)})
    answer_ttl: int = field(default=7 * 24 * 3600, metadata={"env": ("RAGCLI_ANSWER_TTL",)})
    semantic_threshold: float = field(default=0.0, metadata={"env": ("RAGCLI_SEMANTIC_THRESHOLD",)})
    # ask abstains when the best chunk's cosine to the question is below (0: never);
    # benchmarks/abstention.py calibrates it on the sample corpus.
    abstain_threshold: float = field(default=0.4, metadata={"env": ("RAGCLI_ABSTAIN_THRESHOLD",)})
    # ask prints the sources whose cosine is at least this share of the best one's.
    source_floor: float = field(default=0.8, metadata={"env": ("RAGCLI_SOURCE_FLOOR",)})
    retrieval_cache_size: int = field(
        default=20_000, metadata={"env": ("RAGCLI_RETRIEVAL_CACHE_SIZE",)}
    )
    answer_cache_size: int = field(default=5_000, metadata={"env": ("RAGCLI_ANSWER_CACHE_SIZE",)})
    # The warm daemon `ask` starts and uses (ragcli/daemon/): on or off; it exits after
    # `daemon_idle` seconds without a request ("auto": 600, or 60 when CI is set).
    daemon: DaemonMode = field(default="on", metadata={"env": ("RAGCLI_DAEMON",)})
    daemon_idle: str = field(default="auto", metadata={"env": ("RAGCLI_DAEMON_IDLE",)})

    @property
    def caches(self) -> frozenset[str]:
        """The caches in use: all three unless switched off with `no_cache`."""
        off = {c.strip() for c in self.no_cache.split(",") if c.strip()}
        return frozenset() if "all" in off else CACHE_NAMES - off

    @property
    def chroma(self) -> ChromaAccess | None:
        """The Chroma server of `chroma_url` and how to authenticate to it; None: embedded."""
        if not self.chroma_url:
            return None
        return ChromaAccess(
            self.chroma_url, self.chroma_token, self.chroma_token_header, self.chroma_ca_file
        )

    def idle_seconds(self, ci: bool) -> float:
        """Seconds the daemon waits for a request before it exits."""
        if self.daemon_idle == "auto":
            return 60.0 if ci else 600.0
        return float(self.daemon_idle)

    @property
    def generator(self) -> str:
        """The answer generator: explicit `llm`, else OpenAI-compatible when one is configured."""
        if self.llm:
            return self.llm
        configured = self.openai_base_url or self.openai_api_key or self.llm_endpoints
        return "openai" if configured else "extractive"

    def validate(self) -> Settings:
        """These settings, if every one is in range; else one ConfigError line naming the first
        that is not (checked in the order below)."""
        self._check_sizes()
        self._check_caches()
        self._check_pipeline()
        self._check_providers()
        self._check_daemon()
        return self

    def _check_daemon(self) -> None:
        self._check_choice("daemon")
        if self.daemon_idle != "auto":
            try:
                idle = float(self.daemon_idle)
            except ValueError:
                idle = -1.0
            if not idle > 0:
                raise ConfigError(
                    f"daemon_idle must be 'auto' or seconds over 0, got {self.daemon_idle!r}"
                )

    def _check_choice(self, name: str) -> None:
        """A closed-set setting (a Literal field) holds one of its values."""
        value, allowed = getattr(self, name), _CHOICES[name]
        if value not in allowed:
            raise ConfigError(f"unknown {name} {value!r}: use {one_of([repr(a) for a in allowed])}")

    def _check_sizes(self) -> None:
        positive = (
            "chunk_tokens",
            "k",
            "max_context_tokens",
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap must be between 0 and chunk_tokens-1 ({self.chunk_tokens - 1}), "
                f"got {self.chunk_overlap}"
            )

    def _check_caches(self) -> None:
        off = {c.strip() for c in self.no_cache.split(",") if c.strip()} - {"all"}
        if off - CACHE_NAMES:
            raise ConfigError(
                f"unknown cache {sorted(off - CACHE_NAMES)[0]!r} in no_cache: "
                f"use {', '.join(get_args(CacheName))} or all"
            )
        if not 0.0 <= self.semantic_threshold < 1.0:
            raise ConfigError(
                "semantic_threshold must be 0 (off) or a cosine below 1, "
                f"got {self.semantic_threshold}"
            )
        self._check_chroma()
        if self.redis_url:
            check_redis_url(self.redis_url)
        if self.answer_ttl < 0:
            raise ConfigError(f"answer_ttl must be 0 or more seconds, got {self.answer_ttl}")

    def _check_chroma(self) -> None:
        """The Chroma server's URL, token (never echoed) and CA file."""
        if self.chroma_url:
            parse_chroma_url(self.chroma_url)
        self._check_choice("chroma_token_header")
        if self.chroma_token and not all(33 <= ord(c) < 127 for c in self.chroma_token):
            raise ConfigError(
                "chroma_token must be printable ASCII without spaces or line breaks "
                "(it travels in an HTTP header)"
            )
        if self.chroma_ca_file:
            check_ca_file(self.chroma_ca_file)

    def _check_pipeline(self) -> None:
        """How a question is answered: retrieval, the generator, the embedder (registries)."""
        self._check_choice("retrieval")
        for name in ("abstain_threshold", "source_floor"):  # cosines and a share of one
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.hybrid_weight < 0:
            raise ConfigError(f"hybrid_weight must be 0 or more, got {self.hybrid_weight}")
        self._check_choice("search")
        GENERATORS.check(self.generator)
        self._check_choice("prompt_layout")
        EMBEDDERS.check(self.embedder)

    def _check_providers(self) -> None:
        if not 1 <= self.embed_concurrency <= 256:
            raise ConfigError(
                f"embed_concurrency must be between 1 and 256, got {self.embed_concurrency}"
            )
        if not 1 <= self.embed_batch_size <= 2048:
            raise ConfigError(
                f"embed_batch_size must be between 1 and 2048 (the API's limit), "
                f"got {self.embed_batch_size}"
            )
        for name in ("embed_rpm", "embed_tpm", "embed_dimensions", "embed_max_retries"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        from ragcli.core.endpoint_spec import parse_endpoints, parse_hedge_delay

        parse_endpoints(self.llm_endpoints)
        parse_endpoints(self.embed_endpoints)
        parse_hedge_delay(self.hedge_delay_ms)
        if self.llm_attempts < 1:
            raise ConfigError(f"llm_attempts must be at least 1, got {self.llm_attempts}")
        if not self.provider_timeout > 0:
            raise ConfigError(
                f"provider_timeout must be over 0 seconds, got {self.provider_timeout}"
            )


_FIELDS = {f.name: f for f in fields(Settings)}
# The closed-set settings and their values, read from the Literal annotations (written once).
_CHOICES: dict[str, tuple[str, ...]] = {
    name: get_args(hint)
    for name, hint in get_type_hints(Settings).items()
    if get_origin(hint) is Literal
}
_LISTS = frozenset({"llm_endpoints", "embed_endpoints"})  # a TOML list or a comma-separated string
_BOOLS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _coerce(name: str, raw: Any, origin: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in _BOOLS:
                raise ValueError
            return _BOOLS[text]
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind == "Path":
            return Path(os.path.expanduser(str(raw)))
        if name in _LISTS and isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return ",".join(raw)  # a TOML list of endpoints
        if not isinstance(raw, str | int | float):
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        shown = repr(raw) if _FIELDS[name].repr else "(not shown: a secret)"
        raise ConfigError(f"{origin}: {name} has an invalid value {shown}") from None


def check_ca_file(path: str) -> None:
    """A CA file TLS can load (PEM certificates), else one ConfigError line."""
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise ConfigError(f"chroma_ca_file {path}: no such file") from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"chroma_ca_file {path}: not a PEM CA file TLS can load ({why})"
        ) from None


def find_config_file(
    explicit: Path | None = None, cwd: Path | None = None, environ: dict[str, str] | None = None
) -> Path | None:
    """`--config`, else $RAGCLI_CONFIG, else ./ragcli.toml if present (`cwd` and `environ`:
    those of the process whose settings these are; by default this one's)."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    env = (os.environ if environ is None else environ).get("RAGCLI_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"RAGCLI_CONFIG points at a missing file: {path}")
        return path
    local = (Path.cwd() if cwd is None else cwd) / CONFIG_FILE_NAME
    return local if local.is_file() else None


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = _coerce(name, raw, str(path))
    return values


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, f in _FIELDS.items():
        for var in f.metadata.get("env", ()):
            if environ.get(var):
                values[name] = _coerce(name, environ[var], f"environment variable {var}")
                break
    return values


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build validated settings; `overrides` are command-line flags (None values are ignored).
    `environ` and `cwd`: another process's (the daemon answering a client), else this one's."""
    values: dict[str, Any] = {}
    path = find_config_file(config_file, cwd, environ)
    if path is not None:
        values.update(_from_toml(path))
    values.update(_from_env(dict(os.environ) if environ is None else environ))
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"--{name.replace('_', '-')}")
    if values.get("chroma_ca_file"):  # a path as given, from the process's directory
        base = Path.cwd() if cwd is None else cwd
        values["chroma_ca_file"] = str(base / os.path.expanduser(values["chroma_ca_file"]))
    return replace(Settings(), **values).validate()
