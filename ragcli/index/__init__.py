"""The catalogue (catalog.py, the source of truth), the Chroma HNSW store (store.py; chromadb
lives only in this package), the collections kept in step with the catalogue (indexing.py),
exact search, build/rebuild/tune (tuning.py), and Chroma read without chromadb
(chroma_files.py, chroma_http.py)."""
