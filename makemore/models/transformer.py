"""A decoder-only Transformer as in GPT-2 (Radford et al. 2019): learned token and position
embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP, a final LayerNorm."""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.checks import positive, probability
from makemore.errors import MakemoreError
from makemore.models.base import CharModel
from makemore.nn.attention import CausalSelfAttention, as_bias, causal_mask, packed_mask
from makemore.nn.layers import GELU, Dropout, Embedding, LayerNorm, Linear, Sequential, TokenDropout


class Block(nn.Module):
    """``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        self.ln1 = LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln2 = LayerNorm(n_embd)
        self.mlp = Sequential(Linear(n_embd, 4 * n_embd), GELU(), Linear(4 * n_embd, n_embd), Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: dict | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, bias)
        return x + self.mlp(self.ln2(x))


class Transformer(CharModel):
    """A sequence model: ``forward(idx (B, T)) -> logits (B, T, vocab_size)``, causal.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: longest input it is built for: the number of position embeddings.
        n_layer: number of blocks.
        n_head: attention heads per block.
        n_embd: width of the residual stream.
        dropout: dropout on attention weights, residual branches and embeddings.
        token_drop: in training, hide each input character's embedding with this probability.
    """

    examples = "sequences"
    pack_rows = 2.0  # rows of two longest items: about 10% padding left, attention still cheap
    pack_by_default = True

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 64,
        dropout: float = 0.0,
        token_drop: float = 0.0,
    ):
        super().__init__()
        for name, size in (("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd)):
            positive(name, size)
        probability("dropout", dropout)
        probability("token_drop", token_drop)
        if n_embd % n_head:
            raise MakemoreError(f"Transformer n_embd={n_embd} must be a multiple of n_head={n_head}")
        self.block_size = block_size
        self.wte = Embedding(vocab_size, n_embd)
        self.wpe = Embedding(block_size, n_embd)
        self.drop = Dropout(dropout)
        self.token_drop = TokenDropout(token_drop)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.head = Linear(n_embd, vocab_size, bias=False)
        self._init_weights(n_layer)

    def _init_weights(self, n_layer: int) -> None:
        # GPT-2: N(0, 0.02) everywhere, residual projections scaled down by sqrt(2 * n_layer)
        # so the residual stream's variance does not grow with depth.
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (Linear, Embedding)):
                    module.weight.normal_(0.0, 0.02)
                if isinstance(module, Linear) and module.bias is not None:
                    module.bias.zero_()
            for block in self.blocks:
                for proj in (block.attn.proj, block.mlp[2]):
                    proj.weight.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))

    def forward(
        self,
        idx: torch.Tensor,
        caches: list[dict] | None = None,
        start: int = 0,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """With ``caches`` (one dict per block), ``idx`` continues a sequence at position ``start``.
        With ``positions`` (each token's position in its item), rows hold several items each."""
        T = idx.shape[1]
        if positions is None and start + T > self.block_size:  # packed rows may be wider: items are not
            raise MakemoreError(f"a sequence of {start + T} tokens is longer than block_size={self.block_size}")
        packed = positions is not None
        if not packed:
            positions = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.token_drop(self.wte(idx)) + self.wpe(positions))
        bias = None  # with a cache, each layer masks what its cache holds
        if packed:
            bias = as_bias(packed_mask(positions), x.dtype)
        elif caches is None:
            bias = as_bias(causal_mask(T, idx.device), x.dtype)[None, None]
        for i, block in enumerate(self.blocks):
            x = block(x, caches[i] if caches is not None else None, bias)
        return self.head(self.ln_f(x))

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> dict:
        return {"caches": [{} for _ in self.blocks], "position": 0}

    def decode_step(self, tokens: torch.Tensor, state: dict) -> torch.Tensor:
        logits = self(tokens, state["caches"], state["position"])
        state["position"] += tokens.shape[1]
        return logits[:, -1]
