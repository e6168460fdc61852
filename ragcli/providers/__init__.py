"""OpenAI-compatible servers: endpoints, hedging, failover, tokens."""
