"""The endpoint settings as written by the user, parsed and checked: the list of base URLs
(`llm_endpoints`, `embed_endpoints`) and the hedge delay (`hedge_delay_ms`).

Pure parsing, standard library only: `core.config` validates settings with it without
importing the provider layer (ragcli/providers/endpoints.py), which uses the parsed values.
"""

from __future__ import annotations

import math

from ragcli.core.errors import ConfigError

HEDGE_AUTO = -1.0  # parse_hedge_delay's "auto": the endpoint's recent p95 TTFT


def parse_endpoints(raw: str, fallback: str = "") -> list[str]:
    """Comma-separated base URLs (a TOML list arrives joined by commas); `fallback` (the
    single `openai_base_url`, possibly "" for api.openai.com) when the list is empty."""
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint {url!r}: use an http:// or https:// base URL")
    if len(set(urls)) != len(urls):
        raise ConfigError("the same endpoint is listed twice")
    return urls or [fallback]


def parse_hedge_delay(raw: str) -> float | None:
    """Seconds, or -1 (HEDGE_AUTO) for "auto" (the endpoint's recent p95 TTFT), or None for
    off."""
    text = str(raw).strip().lower()
    if text in ("", "auto", "p95"):
        return HEDGE_AUTO
    if text in ("off", "no", "false", "none"):
        return None
    try:
        ms = float(text)
    except ValueError:
        raise ConfigError(
            f"hedge_delay_ms {raw!r}: use auto (the endpoint's p95 TTFT), a number of "
            "milliseconds, or 0/off"
        ) from None
    if not math.isfinite(ms) or ms < 0:
        raise ConfigError(f"hedge_delay_ms must be 0 (off) or more, got {raw!r}")
    return None if ms == 0 else ms / 1000
