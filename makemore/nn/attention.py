"""Causal multi-head self-attention (Vaswani et al. 2017), written out.

``forward(x, cache, bias)``: with a cache (a dict the caller keeps per layer) the keys and values
of earlier calls are kept and reused, so decoding one new position costs one row of attention
instead of recomputing the whole prefix. ``bias`` replaces the causal mask, e.g. ``as_bias`` of
``packed_mask`` for rows that hold several items (``makemore.data.packing``).
"""

from __future__ import annotations

import torch
from torch import nn

from makemore.nn.layers import Dropout, Linear


def causal_mask(T: int, device: torch.device | str = "cpu", keys: int | None = None) -> torch.Tensor:
    """``(T, keys)``, True where query ``i`` may not see key ``j``. The queries are the last ``T``
    of the ``keys`` positions (default ``T``: the same ones), so each sees itself and before."""
    keys = T if keys is None else keys
    return torch.ones(T, keys, dtype=torch.bool, device=device).triu(diagonal=keys - T + 1)


def packed_mask(positions: torch.Tensor) -> torch.Tensor:
    """``(R, 1, W, W)`` for rows of items laid end to end (``positions``: each token's position in
    its item): True where the key is later than the query or in another item."""
    column = torch.arange(positions.shape[1], device=positions.device)
    start = column - positions  # the column where each token's item starts
    other_item = start[:, :, None] != start[:, None, :]
    return (other_item | causal_mask(len(column), positions.device))[:, None]


def as_bias(blocked: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A mask as a term added to the scores: ``-inf`` where blocked, 0 elsewhere."""
    return torch.zeros(blocked.shape, dtype=dtype, device=blocked.device).masked_fill(blocked, float("-inf"))


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

    def forward(self, x: torch.Tensor, cache: dict | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``bias``: ``(B or 1, 1, T, T)``, added to the scores (``as_bias`` of a mask); default causal."""
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        heads = self.qkv(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
        q, k, v = heads[0], heads[1], heads[2]  # (B, H, T, D)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        S = k.shape[2]  # keys: the cache's and this call's
        if bias is None:  # causal over the cache's positions and this call's
            bias = as_bias(causal_mask(T, x.device, keys=S), x.dtype)[None, None]
        bias = bias.expand(B, H, T, S).reshape(B * H, T, S) if bias.shape[0] > 1 else bias.view(1, T, S)
        # bias + q k^T / sqrt(D), one call (D = 16: the scale is a power of two, exact)
        scores = torch.baddbmm(bias, q.reshape(B * H, T, D), k.reshape(B * H, S, D).transpose(1, 2), alpha=D**-0.5)
        weights = self.attn_dropout(scores.softmax(dim=-1))
        y = torch.bmm(weights, v.reshape(B * H, S, D)).view(B, H, T, D).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.proj(y))
