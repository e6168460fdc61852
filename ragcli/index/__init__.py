"""The catalogue (source of truth), the Chroma HNSW store, exact search, build/rebuild/tune."""
