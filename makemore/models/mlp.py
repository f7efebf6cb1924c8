"""The neural probabilistic language model of Bengio et al. (2003) over a context window.

``y = b + W e + U tanh(d + H e)``: ``e`` the concatenated embeddings of the previous
``block_size`` tokens, ``W e`` the optional direct connections from the embeddings to the output.
No BatchNorm: this is the 2003 model, not the lecture's V1/V2 (see ``WaveNet``).
"""

from __future__ import annotations

import torch

from makemore.checks import positive
from makemore.models.base import CharModel
from makemore.nn.layers import Embedding, Linear


class MLP(CharModel):
    """A window model: ``forward(idx (B, block_size)) -> logits (B, vocab_size)``.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: context length in tokens (set from the data).
        n_embd: size of each token's embedding (the paper's m).
        n_hidden: hidden units (the paper's h).
        direct: add the direct embeddings -> output connections (the paper's W).
    """

    examples = "windows"

    def __init__(self, vocab_size: int, block_size: int, n_embd: int = 16, n_hidden: int = 256, direct: bool = False):
        super().__init__()
        positive("n_embd", n_embd)
        positive("n_hidden", n_hidden)
        self.block_size = block_size
        self.wte = Embedding(vocab_size, n_embd)
        self.hidden = Linear(block_size * n_embd, n_hidden)
        self.out = Linear(n_hidden, vocab_size)
        self.direct = Linear(block_size * n_embd, vocab_size, bias=False) if direct else None
        with torch.no_grad():
            self.out.weight.mul_(0.1)  # a less confident first guess: loss starts near ln(vocab)
            if self.direct is not None:
                self.direct.weight.mul_(0.1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e = self.wte(idx).flatten(1)
        logits = self.out(torch.tanh(self.hidden(e)))
        return logits + self.direct(e) if self.direct is not None else logits
