"""Choosing the next token from logits: temperature, top-k and top-p (nucleus) filtering."""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the ``top_k`` largest and outside the smallest set of
    most likely tokens whose probabilities add up to at least ``top_p``. The most likely token
    always stays."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability mass of the tokens ranked above
        drop_sorted = before >= top_p  # already enough mass above this token
        drop_sorted[..., 0] = False  # a top_p below float32's smallest number would drop it too
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def pick_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits (B, V)``; temperature 0 is the argmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    # Shifted so the largest is 0, in float64: a tiny temperature then sends the others to -inf
    # (near-greedy) and a huge one leaves them near 0, where float32 would give inf - inf = NaN.
    logits = logits.double()
    logits = ((logits - logits.amax(dim=-1, keepdim=True)) / temperature).float()
    logits = filter_logits(logits, top_k, top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
