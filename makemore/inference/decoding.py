"""Next-token logits one position at a time, for every family.

Incremental decoding keeps what the net already computed: a Transformer its keys and values,
a recurrent net its hidden state, a window model its sliding context, the bigram just the last
token. ``recompute`` is the slow reference: the whole context again at every position.
A net opts in with ``start_decoding(batch_size) -> state`` and
``decode_step(tokens (B, n), state) -> logits (B, V)`` of the last position; a window model
without them slides its context here.
"""

from __future__ import annotations

import torch
from torch import nn

from makemore.data.vocab import BOUNDARY


def is_window_model(net: nn.Module) -> bool:
    return getattr(net, "examples", "windows") == "windows"


def start(net: nn.Module, batch_size: int, device: torch.device | str = "cpu"):
    """The decoding state before any token (not even the boundary token) has been fed."""
    if hasattr(net, "start_decoding"):
        return net.start_decoding(batch_size)
    return {"context": torch.full((batch_size, net.block_size), BOUNDARY, dtype=torch.long, device=device)}


def step(net: nn.Module, tokens: torch.Tensor, state) -> torch.Tensor:
    """Feed ``tokens (B, n)``; the logits of the token after the last of them."""
    if hasattr(net, "decode_step"):
        return net.decode_step(tokens, state)
    state["context"] = torch.cat([state["context"], tokens], dim=1)[:, -net.block_size :]
    return net(state["context"])


def recompute(net: nn.Module, sequence: torch.Tensor) -> torch.Tensor:
    """The logits after ``sequence (B, t)`` (which starts with the boundary token), from scratch."""
    if is_window_model(net):
        pad = torch.full((len(sequence), net.block_size), BOUNDARY, dtype=torch.long, device=sequence.device)
        context = torch.cat([pad, sequence[:, 1:]], dim=1)[:, -net.block_size :]
        return net(context)
    return net(sequence)[:, -1]
