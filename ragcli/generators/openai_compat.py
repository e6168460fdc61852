"""Streaming chat completions from OpenAI or any OpenAI-compatible server (vLLM, Ollama,
llama.cpp), with the official client: one client per endpoint and process, so connections
are reused. Several endpoints (`llm_endpoints`) are used as one, with load balancing,
failover and hedged requests (ragcli/providers/endpoints.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from ragcli.generators.prompt_types import Prompt
from ragcli.providers.endpoints import EndpointPool
from ragcli.providers.errors import EndpointError, endpoint_error, stream_cut
from ragcli.providers.openai_client import ClientSet, ClientSpec, build_client


def _who(base_url: str) -> str:
    """The provider as named in the user's one-line errors."""
    return f"the LLM provider at {base_url or 'api.openai.com'}"


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
        self.name = f"openai:{model}"
        # No hidden retries inside the client when ragcli fails over between endpoints.
        spec = ClientSpec(api_key, timeout_s, max_retries=0 if len(self.pool) > 1 else None)
        self._clients = ClientSet(spec)
        self._encoding: Any = None

    def _new_client(self, base_url: str | None = None) -> Any:
        return build_client(self._clients.spec, self.base_url if base_url is None else base_url)

    def client_for(self, base_url: str) -> Any:
        """One client per endpoint and process: its pool keeps connections alive."""
        return self._clients.get(base_url)

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

    async def _stream_one(self, base_url: str, prompt: Prompt) -> AsyncGenerator[str, None]:
        """One request to one endpoint. Every failure is an EndpointError; `retryable` says
        whether another endpoint may do better (before the first token only)."""
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
            raise endpoint_error(exc, _who(base_url)) from None
        except Exception as exc:
            if not stream_cut(exc):  # a dropped or truncated stream is retryable; a bug is not
                raise
            raise EndpointError(
                f"the answer stream from {base_url} was cut off ({type(exc).__name__})", True
            ) from None
        finally:
            if response is not None:  # a cancelled (hedged-out) stream: close the connection
                await response.close()
            if not self.reuse_connections:
                await client.close()
