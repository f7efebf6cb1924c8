"""Causal multi-head self-attention (Vaswani et al. 2017), written out.

``forward(x, cache)``: with a cache (a dict the caller keeps per layer) the keys and values of
earlier calls are kept and reused, so decoding one new position costs one row of attention
instead of recomputing the whole prefix.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.nn.layers import Dropout, Linear


class CausalSelfAttention(nn.Module):
    """Every position attends to itself and the positions before it, in ``n_head`` heads."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be a multiple of n_head={n_head}")
        self.n_head = n_head
        self.qkv = Linear(n_embd, 3 * n_embd)  # queries, keys and values of all heads at once
        self.proj = Linear(n_embd, n_embd)
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        B, T, C = x.shape
        heads = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        q, k, v = heads[0], heads[1], heads[2]  # (B, n_head, T, head_size)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        past = k.shape[2] - T  # positions before this call's first query
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        allowed = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        y = self.attn_dropout(weights) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.proj(y))
