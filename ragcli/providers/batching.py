"""The token-aware batch planner of remote embeddings: which inputs go into which request.

Every input lands in exactly one request, in input order, within the API's caps (inputs and
tokens per request, and the TPM budget); within them the work is cut into whole waves of
`concurrency` requests of similar weight, so that every worker has work and the last wave is
no straggler. Pure functions on token counts: no I/O, standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The documented limits of OpenAI's embeddings endpoint.
API_MAX_INPUTS = 2048  # inputs in one request
API_MAX_INPUT_TOKENS = 8191  # tokens in one input
API_MAX_REQUEST_TOKENS = 300_000  # tokens in one request

DEFAULT_BATCH_SIZE = 512
DEFAULT_CONCURRENCY = 8


def pack(tokens: Sequence[int], max_inputs: int, max_tokens: int) -> list[list[int]]:
    """Greedy in input order: a batch closes before it would exceed either cap. An input
    larger than `max_tokens` gets a batch of its own (callers truncate before planning)."""
    batches: list[list[int]] = []
    current: list[int] = []
    weight = 0
    for i, n in enumerate(tokens):
        if current and (len(current) >= max_inputs or weight + n > max_tokens):
            batches.append(current)
            current, weight = [], 0
        current.append(i)
        weight += n
    if current:
        batches.append(current)
    return batches


def plan_batches(
    tokens: Sequence[int],
    concurrency: int = DEFAULT_CONCURRENCY,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tpm: int = 0,
) -> list[list[int]]:
    """Row indices grouped into requests, every input exactly once, in input order.

    Hard caps: `min(batch_size, 2048)` inputs and `min(300,000, tpm or ∞)` tokens per request
    (each input must already be within 8,191 tokens; one larger than the TPM goes alone).
    Within them, the work is cut into a whole number of waves of `concurrency` requests of
    similar token weight, so that every worker has work and the last wave is no straggler.
    """
    n = len(tokens)
    if n == 0:
        return []
    workers = max(1, concurrency)
    max_inputs = max(1, min(batch_size, API_MAX_INPUTS))
    token_cap = API_MAX_REQUEST_TOKENS if tpm <= 0 else min(API_MAX_REQUEST_TOKENS, tpm)
    total = sum(tokens)
    by_count, by_tokens = math.ceil(n / max_inputs), math.ceil(total / token_cap)
    groups = min(n, math.ceil(max(by_count, by_tokens, 1) / workers) * workers)
    if groups <= 1:
        return pack(tokens, max_inputs, token_cap)
    # Equal groups, contiguous: by input count when that cap binds, else by token weight (an
    # input joins the group its token midpoint falls in). The hard caps then apply per group.
    batches: list[list[int]] = []
    start, current, done = 0, 0, 0
    for i, w in enumerate(tokens):
        if by_count >= by_tokens:
            g = i * groups // n
        else:
            g = min(groups - 1, int((done + w / 2) * groups / total))
        if g != current:
            batches += [
                [start + j for j in b] for b in pack(tokens[start:i], max_inputs, token_cap)
            ]
            start, current = i, g
        done += w
    batches += [[start + j for j in b] for b in pack(tokens[start:], max_inputs, token_cap)]
    return batches
