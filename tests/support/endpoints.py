"""OpenAI-compatible test endpoints for the failover and hedging tests: a server that answers
a fixed reply, and a way to hold first tokens until a condition holds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.support.openai_server import OpenAICompatibleServer, ServerConfig, wait_for

REPLY = "Open PageRelay and click Hand Over [1]."


def server(**kw: Any) -> OpenAICompatibleServer:
    return OpenAICompatibleServer(ServerConfig(reply=REPLY, **kw))


def release_when(
    condition: Callable[[], bool], *servers: OpenAICompatibleServer
) -> threading.Thread:
    """In the background: once `condition()` holds, release the servers' held answers. If it
    never holds they are released anyway after wait_for's bound (a hang guard), so the test
    fails on its assertions instead of hanging."""

    def run() -> None:
        try:
            wait_for(condition, what="the event that releases the held answers")
        finally:
            for s in servers:
                s.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
