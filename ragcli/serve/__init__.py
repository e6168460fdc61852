"""`ragcli serve`: the pipeline behind an OpenAI-compatible HTTP API, its metrics and client."""
