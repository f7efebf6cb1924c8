"""The bigram model: a table of next-token counts, fitted by counting, not by gradient descent.

``P(b | a) = (count(a, b) + alpha) / (count(a) + alpha * V)``: additive (Laplace) smoothing keeps
every pair possible. ``fit_data`` counts the whole training split once, at the start of
``fit``. The counts are the model's one parameter: they are saved in and restored from
checkpoints, and a data-parallel run (DDP) has a parameter to wrap, though no optimizer ever
touches it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from makemore.checks import NET_OPTION, finite
from makemore.models.base import CharModel


class Bigram(CharModel):
    """A window model that reads only the last token of its context.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: context length of the data (only the last token is used).
        smoothing: alpha, the count added to every pair.
    """

    examples = "windows"
    trained_by_gradient = False  # counted, not descended

    def __init__(self, vocab_size: int, block_size: int, smoothing: float = 1.0):
        super().__init__()
        finite(NET_OPTION + "smoothing", smoothing, low=0)
        self.block_size = block_size
        self.smoothing = smoothing
        self.counts = nn.Parameter(torch.zeros(vocab_size, vocab_size))

    @torch.no_grad()
    def fit_data(self, train: Dataset) -> None:
        """Replace the table with the counts of (last context token, target) pairs."""
        contexts, targets = (t.to(self.counts.device) for t in train[:])
        keep = targets != -1
        pairs = (contexts[:, -1][keep], targets[keep])
        self.counts.zero_()
        self.counts.index_put_(pairs, torch.ones(len(pairs[0]), device=self.counts.device), accumulate=True)

    def log_probs(self) -> torch.Tensor:
        """The ``(V, V)`` table of ``log P(next | previous)``."""
        table = self.counts + self.smoothing
        return table.log() - table.sum(dim=1, keepdim=True).log()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.log_probs()[idx[:, -1]]

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> dict:
        return {"table": self.log_probs()}  # normalised once; each step is then a lookup

    def decode_step(self, tokens: torch.Tensor, state: dict) -> torch.Tensor:
        return state["table"][tokens[:, -1]]
