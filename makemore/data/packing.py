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

``step_batches`` gives each optimizer step's ``(inputs, targets, positions)`` of a training batch,
packed or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass
class PackedSteps:
    """The batches of several optimizer steps, packed: step ``k`` is rows ``bounds[k][0]`` to
    ``bounds[k][1]`` of the tensors, its first ``bounds[k][2]`` columns."""

    inputs: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor
    bounds: list[tuple[int, int, int]]

    def __len__(self) -> int:
        return len(self.bounds)

    def __iter__(self):
        for first, end, width in self.bounds:
            yield self.inputs[first:end, :width], self.targets[first:end, :width], self.positions[first:end, :width]


def pack(inputs: torch.Tensor, targets: torch.Tensor, row_width: float = 1.0) -> PackedSteps:
    """Pack ``K`` padded sequence batches ``(K, B, T)`` (targets ``-1`` past each item's end) into
    rows ``row_width`` times as wide as each batch's longest item."""
    K, B, T = targets.shape
    lengths = (targets != IGNORE).sum(dim=2)  # (K, B): an item's tokens, its end included
    placed_rows, placed_columns, bounds = [], [], []
    for step_lengths in lengths.tolist():
        width = math.ceil(row_width * max(step_lengths))
        rows, columns, count = plan(step_lengths, width)
        first = bounds[-1][1] if bounds else 0
        placed_rows += [first + row for row in rows]
        placed_columns += columns
        bounds.append((first, first + count, width))
    total_rows, width = bounds[-1][1], max(bound[2] for bound in bounds)
    t = torch.arange(T)
    inside = (t < lengths.reshape(-1, 1)).reshape(-1)  # (K * B * T,): a token of an item
    start = torch.tensor(placed_rows) * width + torch.tensor(placed_columns)  # (K * B,)
    destination = (start[:, None] + t).reshape(-1)[inside]
    packed_inputs = inputs.new_full((total_rows * width,), BOUNDARY)
    packed_targets = targets.new_full((total_rows * width,), IGNORE)
    packed_positions = torch.zeros(total_rows * width, dtype=torch.long)
    packed_inputs[destination] = inputs.reshape(-1)[inside]
    packed_targets[destination] = targets.reshape(-1)[inside]
    packed_positions[destination] = t.repeat(K * B)[inside]
    shape = (total_rows, width)
    return PackedSteps(packed_inputs.view(shape), packed_targets.view(shape), packed_positions.view(shape), bounds)


def reached_widths(ys: torch.Tensor) -> list:
    """For sequence batches ``(K, B, T)``: each batch's last position with a target, plus one,
    so padding that no item in the batch reaches costs nothing. Window batches: no trimming."""
    if ys.ndim < 3:
        return [None] * len(ys)
    has_target = (ys != -1).any(dim=1)  # (K, T)
    return (has_target.shape[1] - has_target.flip(1).int().argmax(dim=1)).tolist()


def step_batches(batch, trim: bool = True) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``(inputs, targets, positions)`` of each optimizer step of a training batch: packed rows
    with their positions, or the stacked batches, with no padding past their longest item if
    ``trim``."""
    if isinstance(batch, PackedSteps):
        return list(batch)
    xs, ys = batch
    ends = reached_widths(ys) if trim else [None] * len(ys)
    return [(x[:, :w], y[:, :w], None) if w else (x, y, None) for x, y, w in zip(xs, ys, ends)]


def chunks(positions: torch.Tensor | None, parts: int) -> list:
    """``positions`` in ``parts`` chunks of rows, as ``tensor.chunk`` cuts inputs and targets."""
    return [None] * parts if positions is None else list(positions.chunk(parts))
