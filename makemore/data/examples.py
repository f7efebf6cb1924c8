"""Items as tensors of examples, all at once (scoring, counting, tests; training gathers them
batch by batch from ``makemore.data.tokens``).

Two kinds:
- ``windows``: every position of every item gives (previous ``block_size`` tokens, padded with
  the boundary token) -> next token, the end token included (the MLP/WaveNet line);
- ``sequences``: a whole item as input ``[BOUNDARY, c1, ..., cn]`` with targets
  ``[c1, ..., cn, BOUNDARY]``, padded to a common length with target ``-1`` (recurrent nets and
  Transformers).
"""

from __future__ import annotations

import torch

from makemore.data.tokens import IGNORE, Examples, TokenSplit
from makemore.data.vocab import Vocabulary

__all__ = ["IGNORE", "sequences", "windows"]


def windows(items: list[str], vocab: Vocabulary, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, block_size)`` contexts and ``(N,)`` next tokens, item by item, position by position."""
    return Examples(TokenSplit.encode(items, vocab), "windows", block_size)[:]


def sequences(items: list[str], vocab: Vocabulary, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, length)`` inputs starting with the boundary token and targets shifted by one, ``-1`` padded."""
    return Examples(TokenSplit.encode(items, vocab), "sequences", length)[:]
