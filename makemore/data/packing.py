"""Packing: the items of a batch laid end to end in a few rows, instead of one padded row each.

A padded batch of ``B`` items costs ``B x`` (its longest item) positions; names hold about 7
tokens against a longest of 11 to 16 in a batch of 32, so a third to a half of the positions are
padding. Packed, the items of a batch fill rows as wide as its longest item (best fit, longest
first), and every token carries its position within its item: a Transformer lets a token attend
to its own item's earlier tokens only and numbers positions from each item's start, a recurrent
net restarts its state where an item starts. The predictions and targets are the padded batch's;
only the order in which the loss adds them up changes.

Padding left at the end of a row has position 0 everywhere: each padding token is an item of
its own, with no target.
"""

from __future__ import annotations

import math

import torch

from makemore.data.tokens import IGNORE
from makemore.data.vocab import BOUNDARY


def plan(lengths: list[int], width: int) -> tuple[list[int], list[int], int]:
    """Row and first column of each item (all ``<= width`` long) in rows ``width`` wide, and the
    number of rows: longest items first, each into the fullest row it still fits in."""
    rows, columns = [0] * len(lengths), [0] * len(lengths)
    with_space = [[] for _ in range(width)]  # with_space[s]: rows with s positions left (0 < s < width)
    used = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
        need = lengths[i]
        space = next((s for s in range(need, width) if with_space[s]), width)
        if space == width:  # a new row
            row, used = used, used + 1
        else:
            row = with_space[space].pop()
        rows[i], columns[i] = row, width - space
        if space > need:
            with_space[space - need].append(row)
    return rows, columns, used


def pack(inputs: torch.Tensor, targets: torch.Tensor, row_width: float = 1.0) -> tuple[torch.Tensor, ...]:
    """Pack a padded sequence batch ``(B, T)`` (targets ``-1`` past each item's end) into rows
    ``row_width`` times as wide as its longest item: ``(inputs, targets, positions)``."""
    B, T = targets.shape
    lengths = (targets != IGNORE).sum(dim=1)  # (B,): an item's tokens, its end included
    host_lengths = lengths.tolist()
    width = math.ceil(row_width * max(host_lengths))
    rows, columns, count = plan(host_lengths, width)
    device = targets.device
    t = torch.arange(T, device=device)
    inside = (t < lengths[:, None]).reshape(-1)  # (B * T,): a token of an item
    start = torch.tensor(rows, device=device) * width + torch.tensor(columns, device=device)  # (B,)
    destination = (start[:, None] + t).reshape(-1)[inside]
    packed_inputs = inputs.new_full((count * width,), BOUNDARY)
    packed_targets = targets.new_full((count * width,), IGNORE)
    packed_positions = torch.zeros(count * width, dtype=torch.long, device=device)
    packed_inputs[destination] = inputs.reshape(-1)[inside]
    packed_targets[destination] = targets.reshape(-1)[inside]
    packed_positions[destination] = t.repeat(B)[inside]
    shape = (count, width)
    return packed_inputs.view(shape), packed_targets.view(shape), packed_positions.view(shape)


def trim(inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sequence batch ``(B, T)`` without the padding columns past its longest item, which no
    target reaches (they would cost compute and change nothing). Window batches stay as they are."""
    if targets.ndim < 2:
        return inputs, targets
    has_target = (targets != IGNORE).any(dim=0)  # (T,)
    width = int(has_target.shape[0] - has_target.flip(0).int().argmax())
    return inputs[:, :width], targets[:, :width]
