"""The three caches (query embedding, retrieval, answer) on SQLite or Redis, and their admin."""
