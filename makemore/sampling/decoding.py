"""The slow reference for incremental decoding: the whole context again at every position.

Every family decodes one position at a time through its ``start_decoding`` / ``decode_step``
(``makemore.models.base``): a Transformer keeps its keys and values, a recurrent net its hidden
state, a window model its sliding context, the bigram just the last token. The tests and the
sampling benchmark hold those against ``recompute``.
"""

from __future__ import annotations

import torch

from makemore.data.vocab import BOUNDARY
from makemore.models.base import CharModel


def recompute(net: CharModel, sequence: torch.Tensor) -> torch.Tensor:
    """The logits after ``sequence (B, t)`` (which starts with the boundary token), from scratch."""
    if net.examples == "windows":
        pad = torch.full((len(sequence), net.block_size), BOUNDARY, dtype=torch.long, device=sequence.device)
        context = torch.cat([pad, sequence[:, 1:]], dim=1)[:, -net.block_size :]
        return net(context)
    return net(sequence)[:, -1]
