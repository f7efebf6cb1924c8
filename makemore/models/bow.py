"""A causal bag of words: each position sees the mean of everything up to it, order forgotten.

The simplest sequence model that looks further back than one character without a recurrence or
attention (the reference makemore's ``BoW``): token and position embeddings, then one block that
adds to each position the average of the vectors at and before it, and a tanh MLP, both residual.
The average is a running sum divided by a count, so it costs ``O(T)`` and decodes incrementally.
"""

from __future__ import annotations

import torch

from makemore.checks import positive
from makemore.errors import MakemoreError
from makemore.models.base import CharModel
from makemore.nn.layers import Embedding, Linear, Tanh


class BoW(CharModel):
    """A sequence model: ``forward(idx (B, T)) -> logits (B, T, vocab_size)``, causal.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: longest input it is built for: the number of position embeddings.
        n_embd: width of the token and position embeddings.
        n_hidden: width of the MLP after the average.
    """

    examples = "sequences"
    pack_rows = 2.0  # wider rows leave less of the last row empty; a bag costs O(T) anyway
    pack_by_default = True

    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 64, n_hidden: int = 256):
        super().__init__()
        positive("n_embd", n_embd)
        positive("n_hidden", n_hidden)
        self.block_size = block_size
        self.wte = Embedding(vocab_size, n_embd)
        self.wpe = Embedding(block_size, n_embd)
        self.fc = Linear(n_embd, n_hidden)
        self.act = Tanh()
        self.proj = Linear(n_hidden, n_embd)
        self.head = Linear(n_embd, vocab_size)
        with torch.no_grad():
            self.head.weight *= 0.1  # an unsure start: logits near zero, a loss near ln(vocab_size)

    def _embed(self, idx: torch.Tensor, start: int, positions: torch.Tensor | None = None) -> torch.Tensor:
        T = idx.shape[1]
        if positions is None and start + T > self.block_size:  # packed rows may be wider: items are not
            raise MakemoreError(f"a sequence of {start + T} tokens is longer than block_size={self.block_size}")
        if positions is None:
            positions = torch.arange(start, start + T, device=idx.device)
        return self.wte(idx) + self.wpe(positions)

    def _head(self, x: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        x = x + sums / counts[..., None]  # the bag: the mean of positions 0..t, added to position t
        x = x + self.proj(self.act(self.fc(x)))
        return self.head(x)

    def forward(self, idx: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """With ``positions`` (each token's position in its item), rows hold several items each:
        each position's bag holds its own item's tokens only."""
        x = self._embed(idx, 0, positions)
        sums = x.cumsum(dim=1)
        if positions is None:
            return self._head(x, sums, torch.arange(1, idx.shape[1] + 1, device=idx.device, dtype=x.dtype))
        # the running sum from the row's start, less what it held just before the item began
        before = torch.arange(idx.shape[1], device=idx.device) - positions - 1  # (B, T)
        held = sums.gather(1, before.clamp(min=0).unsqueeze(-1).expand_as(sums))
        sums = sums - held * (before >= 0).unsqueeze(-1)
        return self._head(x, sums, (positions + 1).to(x.dtype))

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> dict:
        return {"sum": 0.0, "position": 0}

    def decode_step(self, tokens: torch.Tensor, state: dict) -> torch.Tensor:
        x = self._embed(tokens, state["position"])
        sums = state["sum"] + x.cumsum(dim=1)
        counts = torch.arange(1, tokens.shape[1] + 1, device=x.device, dtype=x.dtype) + state["position"]
        state["sum"], state["position"] = sums[:, -1:], state["position"] + tokens.shape[1]
        return self._head(x, sums, counts)[:, -1]
