"""Shared ground, stdlib only at import time: settings, errors and exit codes, the data
directory, SQLite, the writer lock, native imports, the plain records (documents, chunks), the
embedder and generator registries, endpoint and URL parsing."""
