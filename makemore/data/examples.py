"""Items as tensors of examples, built once so that batches are plain indexing.

Two kinds:
- ``windows``: every position of every item gives (previous ``block_size`` tokens, padded with
  the boundary token) -> next token, the end token included (the MLP/WaveNet line);
- ``sequences``: a whole item as input ``[BOUNDARY, c1, ..., cn]`` with targets
  ``[c1, ..., cn, BOUNDARY]``, padded to a common length with target ``-1`` (recurrent nets and
  Transformers).
"""

from __future__ import annotations

import torch

from makemore.data.vocab import BOUNDARY, Vocabulary

IGNORE = -1  # target id with nothing to predict


def _padded(rows: list[list[int]], width: int, fill: int) -> torch.Tensor:
    out = torch.full((len(rows), width), fill, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def windows(items: list[str], vocab: Vocabulary, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, block_size)`` contexts and ``(N,)`` next tokens, item by item, position by position."""
    encoded = [vocab.encode(item) for item in items]
    longest = max((len(ids) for ids in encoded), default=0)
    # Each row: block_size boundary tokens, the item, the end token; slide a window over it.
    rows = _padded([[BOUNDARY] * block_size + ids + [BOUNDARY] for ids in encoded], block_size + longest + 1, BOUNDARY)
    frames = rows.unfold(1, block_size + 1, 1)  # (items, longest + 1, block_size + 1)
    lengths = torch.tensor([len(ids) + 1 for ids in encoded])
    keep = torch.arange(longest + 1)[None, :] < lengths[:, None]
    frames = frames[keep]
    return frames[:, :block_size].contiguous(), frames[:, block_size].contiguous()


def sequences(items: list[str], vocab: Vocabulary, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, length)`` inputs starting with the boundary token and targets shifted by one, ``-1`` padded."""
    encoded = [vocab.encode(item) for item in items]
    x = _padded([[BOUNDARY] + ids for ids in encoded], length, BOUNDARY)
    y = _padded([ids + [BOUNDARY] for ids in encoded], length, IGNORE)
    return x, y
