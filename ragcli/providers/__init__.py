"""OpenAI-compatible servers and model files: the client factory (openai_client) and the error
mapping (errors) that the embedder and the chat generator share; several endpoints used as one
(endpoints: balancing, failover, hedging); flow control for remote embeddings (batching, flow,
pacer); offline token counting (tokens); and the installer of shipped model weights
(model_install). Every module here is cheap to import: ``openai``, ``httpx`` and ``tiktoken``
load inside functions."""
