"""Documents in: discovery, reading, token chunking and the ingest run."""
