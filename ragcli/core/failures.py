"""A failure as the user sees it: one line for stderr and the exit code, never a traceback.
Shared by the command line's `main()` and the daemon, which reports the same line to its
client."""

from __future__ import annotations

from ragcli.core.errors import EXIT_ERROR, RagcliError


def failure_line(exc: BaseException) -> tuple[str, int]:
    """`ragcli: error: …` and the documented exit code of a RagcliError; storage trouble met
    mid-operation (read-only or full disk, a file gone) in one line; anything else as an
    internal error, also in one line."""
    if isinstance(exc, RagcliError):
        return f"ragcli: error: {exc}", exc.exit_code
    from ragcli.core.db import STORAGE_EXCEPTIONS

    if isinstance(exc, STORAGE_EXCEPTIONS):
        detail = getattr(exc, "strerror", None) or str(exc)
        filename = getattr(exc, "filename", None)
        where = f" ({filename})" if filename else ""
        line = f"ragcli: error: storage: {detail}{where}; `ragcli status` says what is affected"
        return line, EXIT_ERROR
    name = type(exc).__name__
    return f"ragcli: internal error: {name}: {exc} (set RAGCLI_DEBUG=1 for a traceback)", EXIT_ERROR
