"""Shared ground: settings, errors, the data directory, SQLite, the writer lock, native imports."""
