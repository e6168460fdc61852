"""Streaming chat completions from OpenAI or any OpenAI-compatible server (vLLM, Ollama,
llama.cpp), with the official client: one client per endpoint and process, so connections
are reused. Several endpoints (`llm_endpoints`) are used as one, with load balancing,
failover and hedged requests (ragcli/providers/endpoints.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from ragcli.core.errors import ProviderError
from ragcli.providers.endpoints import EndpointError, EndpointPool
from ragcli.retrieval.prompt import Prompt


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


def _record_usage(prompt: Prompt, usage: Any) -> None:
    """Prompt tokens and cached prompt tokens (prefix caching), when the provider says."""
    if usage is None or not getattr(usage, "prompt_tokens", None):
        return
    prompt.usage["prompt_tokens"] = int(usage.prompt_tokens)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if cached is not None:
        prompt.usage["cached_tokens"] = int(cached)


class OpenAIGenerator:
    label = ""

    def __init__(
        self,
        model: str,
        base_url: str = "",
        api_key: str = "",
        reuse_connections: bool = True,
        timeout_s: float = 120.0,  # seconds to wait for the next bytes of an answer
        endpoints: Sequence[str] = (),  # several base URLs used as one (else `base_url`)
        hedge_delay: float | None = -1.0,  # seconds; -1: the endpoint's p95 TTFT; None: off
        attempts: int = 3,  # most requests (failovers and hedges included) per answer
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self.reuse_connections = reuse_connections
        self.pool = EndpointPool(list(endpoints) or [base_url], hedge_delay, attempts)
        self.base_url = self.pool.endpoints[0].url
        self._api_key = api_key
        self.name = f"openai:{model}"
        self._clients: dict[str, Any] = {}
        self._encoding: Any = None

    def _new_client(self, base_url: str | None = None) -> Any:
        import openai

        url = self.base_url if base_url is None else base_url
        if not self._api_key and not url:
            raise ProviderError("no API key: set OPENAI_API_KEY or OPENAI_BASE_URL")
        # Local OpenAI-compatible servers usually need no key, but the client insists on one.
        # No hidden retries inside the client when ragcli fails over between endpoints.
        extra = {"max_retries": 0} if len(self.pool) > 1 else {}
        return openai.AsyncOpenAI(
            api_key=self._api_key or "not-needed",
            base_url=url or None,
            timeout=self.timeout_s,
            **extra,
        )

    def client_for(self, base_url: str) -> Any:
        """One client per endpoint and process: its pool keeps connections alive."""
        client = self._clients.get(base_url)
        if client is None:
            client = self._clients[base_url] = self._new_client(base_url)
        return client

    @property
    def client(self) -> Any:
        """The first endpoint's client."""
        return self.client_for(self.base_url)

    def count_tokens(self, text: str) -> int:
        if self._encoding is None:
            from ragcli.providers.tokens import encoding_for_model

            self._encoding = encoding_for_model(self.model)
        return len(self._encoding.encode(text, disallowed_special=()))

    async def warm(self) -> None:
        """Pay the `openai` import (≈0.8 s) and the tokenizer load off the event loop."""
        import asyncio

        def work() -> None:
            for ep in self.pool.endpoints:  # creating them imports `openai`
                self.client_for(ep.url)
            self.count_tokens("")

        await asyncio.to_thread(work)

    async def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        # With several endpoints, `prompt.usage` also receives the route taken (endpoint,
        # attempts, failovers, hedged, hedge_won): the pipeline puts it on its spans.
        async for piece in self.pool.stream(
            lambda ep: self._stream_one(ep.url, prompt), prompt.usage
        ):
            yield piece

    async def _stream_one(self, base_url: str, prompt: Prompt) -> AsyncIterator[str]:
        """One request to one endpoint. Every failure is an EndpointError; `retryable` says
        whether another endpoint may do better (before the first token only)."""
        import httpx
        import openai

        # Without reuse (an ablation, `connection_reuse = false`) every request pays a new
        # client and a new TCP connection, as a naive script would.
        client = self.client_for(base_url) if self.reuse_connections else self._new_client(base_url)
        response: Any = None
        streamed = False
        try:
            response = await client.chat.completions.create(
                model=self.model,
                messages=prompt.messages(),
                stream=True,
                stream_options={"include_usage": True},  # a last chunk with usage
            )
            finished = False
            async for event in response:
                _record_usage(prompt, getattr(event, "usage", None))
                if event.choices and event.choices[0].delta.content:
                    streamed = True
                    yield event.choices[0].delta.content
                if event.choices and event.choices[0].finish_reason:
                    finished = True
            if not finished:  # the stream ended without a finish_reason: cut off
                raise EndpointError(f"the answer stream from {base_url} ended early", True)
        except openai.OpenAIError as exc:
            if streamed:  # after the first token the connection did not fail: it was cut
                raise EndpointError(
                    f"the answer stream from {base_url} was cut off ({type(exc).__name__})", True
                ) from None
            raise _endpoint_error(exc, base_url) from None
        except (httpx.HTTPError, OSError, ValueError) as exc:  # a dropped or truncated stream
            raise EndpointError(
                f"the answer stream from {base_url} was cut off ({type(exc).__name__})", True
            ) from None
        finally:
            if response is not None:  # a cancelled (hedged-out) stream: close the connection
                await response.close()
            if not self.reuse_connections:
                await client.close()


def _endpoint_error(exc: Exception, base_url: str) -> EndpointError:
    """The user's one line, and whether another endpoint may succeed: connection errors,
    timeouts, 408/409, 429 (with its Retry-After) and 5xx."""
    import openai

    message = describe_openai_error(exc, base_url)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429 or status in (408, 409) or status >= 500:
            from ragcli.embedders.openai_embedder import _retry_after

            return EndpointError(message, True, _retry_after(exc.response.headers))
        return EndpointError(message, False)
    return EndpointError(message, isinstance(exc, openai.APIConnectionError))
