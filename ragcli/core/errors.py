"""Errors that the CLI turns into one line on stderr and a documented exit code."""

from __future__ import annotations

# Exit codes (documented in README.md).
EXIT_ERROR = 1  # a runtime failure: provider down, index unreadable, …
EXIT_USAGE = 2  # bad flag values, bad config, bad input paths
EXIT_NOT_READY = 3  # nothing ingested / model not installed: a setup step is missing
EXIT_BUDGET = 4  # a `profile --budget` gate failed
EXIT_BUSY = 5  # another writer holds the data directory (see --wait)
EXIT_QUALITY = 6  # an `eval --min` gate failed: a quality figure under its minimum
EXIT_INTERRUPTED = 130  # Ctrl-C


class RagcliError(Exception):
    """Base error: its message is shown to the user as one line, without a traceback."""

    exit_code = EXIT_ERROR


class UsageError(RagcliError):
    """The user asked for something malformed (flag value, path, config key)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """ragcli.toml or an environment variable holds an invalid value."""


class NotReadyError(RagcliError):
    """A prerequisite is missing: run `ragcli ingest` or `make install` first."""

    exit_code = EXIT_NOT_READY


class ProviderError(RagcliError):
    """A remote embedding or LLM provider failed after retries."""


class BusyError(RagcliError):
    """Another ragcli writer holds the data directory."""

    exit_code = EXIT_BUSY
