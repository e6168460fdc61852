"""The request path: one async pipeline from question to streamed answer, and the prompt."""
