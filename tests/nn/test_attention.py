"""Causal self-attention against F.scaled_dot_product_attention, and its key/value cache."""

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from makemore.nn.attention import CausalSelfAttention


def reference(attn: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    B, T, C = x.shape
    q, k, v = (x @ attn.qkv.weight + attn.qkv.bias).split(C, dim=-1)
    q, k, v = (t.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
    return y @ attn.proj.weight + attn.proj.bias


def test_attention_matches_sdpa_values_and_gradients():
    attn = CausalSelfAttention(16, 4)
    x = torch.randn(3, 7, 16, requires_grad=True)
    attn(x).pow(2).sum().backward()
    mine = [x.grad.clone()] + [p.grad.clone() for p in attn.parameters()]
    x.grad = None
    attn.zero_grad()
    reference(attn, x).pow(2).sum().backward()
    theirs = [x.grad] + [p.grad for p in attn.parameters()]
    assert_close(attn(x), reference(attn, x))
    assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_cache_gives_the_same_outputs_as_the_whole_sequence():
    attn = CausalSelfAttention(16, 2).eval()
    x = torch.randn(2, 6, 16)
    cache: dict = {}
    pieces = [attn(x[:, :3], cache)] + [attn(x[:, t : t + 1], cache) for t in range(3, 6)]
    assert_close(torch.cat(pieces, dim=1), attn(x))
