"""`ragcli serve`: the pipeline behind an OpenAI-compatible HTTP API, its metrics and client.

server.py (the app and uvicorn), handlers.py (one method per route), requests.py (parsing,
admission, time limit, error shape), service.py (the warm pipeline), sse.py (the streamed
completion), prometheus.py (the metrics text), remote.py (the stdlib client of `--server`).
"""
