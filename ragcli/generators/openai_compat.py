"""Streaming chat completions from OpenAI or any OpenAI-compatible server (vLLM, Ollama,
llama.cpp), with the official client: one client per process, so connections are reused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ragcli.errors import ProviderError
from ragcli.prompt import Prompt


def describe_openai_error(exc: Exception, base_url: str) -> str:
    """One line for the user; never echoes the API key."""
    import openai

    where = base_url or "api.openai.com"
    if isinstance(exc, openai.AuthenticationError):
        return f"the LLM provider at {where} rejected the API key (check OPENAI_API_KEY)"
    if isinstance(exc, openai.NotFoundError):
        return f"the LLM provider at {where} answered 404: unknown model or wrong base URL"
    if isinstance(exc, openai.APITimeoutError):
        return f"the LLM provider at {where} timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect to the LLM provider at {where}"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM provider at {where} answered HTTP {exc.status_code}"
    return f"the LLM provider at {where} failed: {type(exc).__name__}"


class OpenAIGenerator:
    label = ""

    def __init__(
        self, model: str, base_url: str = "", api_key: str = "", reuse_connections: bool = True
    ) -> None:
        self.model = model
        self.reuse_connections = reuse_connections
        self.base_url = base_url
        self._api_key = api_key
        self.name = f"openai:{model}"
        self._client: Any = None
        self._encoding: Any = None

    def _new_client(self) -> Any:
        import openai

        if not self._api_key and not self.base_url:
            raise ProviderError("no API key: set OPENAI_API_KEY or OPENAI_BASE_URL")
        # Local OpenAI-compatible servers usually need no key, but the client insists on one.
        return openai.AsyncOpenAI(
            api_key=self._api_key or "not-needed", base_url=self.base_url or None
        )

    @property
    def client(self) -> Any:
        """One client per process: its connection pool keeps connections alive between calls."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def count_tokens(self, text: str) -> int:
        if self._encoding is None:
            from ragcli.tokens import encoding_for_model

            self._encoding = encoding_for_model(self.model)
        return len(self._encoding.encode(text, disallowed_special=()))

    async def warm(self) -> None:
        """Pay the `openai` import (≈0.8 s) and the tokenizer load off the event loop."""
        import asyncio

        def work() -> None:
            self.client  # noqa: B018 — creating it imports `openai`
            self.count_tokens("")

        await asyncio.to_thread(work)

    async def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        import httpx
        import openai

        # Without reuse (an ablation, `connection_reuse = false`) every request pays a new
        # client and a new TCP connection, as a naive script would.
        client = self.client if self.reuse_connections else self._new_client()
        try:
            response = await client.chat.completions.create(
                model=self.model, messages=prompt.messages(), stream=True
            )
            finished = False
            async for event in response:
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
                if event.choices and event.choices[0].finish_reason:
                    finished = True
            if not finished:  # the stream ended without a finish_reason: cut off
                raise ProviderError(f"the answer stream from {self.base_url} ended early")
        except openai.OpenAIError as exc:
            raise ProviderError(describe_openai_error(exc, self.base_url)) from None
        except (httpx.HTTPError, OSError, ValueError) as exc:  # a dropped or truncated stream
            raise ProviderError(
                f"the answer stream from {self.base_url} was cut off ({type(exc).__name__})"
            ) from None
        finally:
            if not self.reuse_connections:
                await client.close()
