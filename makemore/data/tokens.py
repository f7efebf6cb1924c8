"""A split's items as one flat token array, and examples gathered from it batch by batch.

Each item is stored as its characters' ids followed by its end token (the boundary id), back to
back, in the smallest integer type that holds the vocabulary, with the offset of every item's
start: about a byte a character, where a table of windows costs ``(block_size + 1) * 8`` bytes.

Window example ``i`` is flat token ``i`` (a character, or an item's end, to predict) with the
``block_size`` tokens before it in its item as context, boundary-padded: the same examples, in
the same order, as sliding a window over each item in turn. Sequence example ``k`` is item
``k``: input ``[BOUNDARY, c1, ..., cn]``, targets ``[c1, ..., cn, BOUNDARY]``, padded.
"""

from __future__ import annotations

import torch

from makemore.data.vocab import BOUNDARY, Vocabulary

IGNORE = -1  # target id with nothing to predict
CHUNK = 1 << 24  # code points mapped at a time


def smallest_dtype(vocab_size: int) -> torch.dtype:
    return torch.uint8 if vocab_size <= 256 else torch.int16 if vocab_size <= 2**15 else torch.int32


class TokenSplit:
    """``tokens``: every item's ids and end token, back to back; ``offsets[k]``: where item ``k``
    starts (one more entry: the end)."""

    def __init__(self, tokens: torch.Tensor, offsets: torch.Tensor):
        self.tokens, self.offsets = tokens, offsets
        self._positions = None

    @classmethod
    def encode(cls, items: list[str], vocab: Vocabulary) -> TokenSplit:
        """All items at once: one string, its code points mapped to ids through a lookup table,
        a slice at a time (bounded memory for files of millions of lines)."""
        text = "\n".join(items) + "\n" if items else ""  # "\n" never occurs inside an item
        if text.isascii():  # a byte a character
            codes = torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8)
        else:
            codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
        del text
        points = torch.tensor([ord(ch) for ch in vocab.chars], dtype=torch.long)
        # Up to "\n" at least: it separates the items, even when every character lies below it.
        size = max(int(points.max()) if len(points) else 0, ord("\n")) + 1
        table = torch.zeros(size, dtype=smallest_dtype(vocab.size))
        table[points] = torch.arange(1, vocab.size, dtype=table.dtype)  # "\n" and the rest: BOUNDARY
        ids = torch.empty(len(codes), dtype=table.dtype)
        for start in range(0, len(codes), CHUNK):
            ids[start : start + CHUNK] = table[codes[start : start + CHUNK].long()]
        ends = (codes == ord("\n")).nonzero().flatten()
        return cls(ids, torch.cat([torch.zeros(1, dtype=torch.long), ends + 1]))

    def to(self, device: torch.device) -> TokenSplit:
        """This split on ``device`` (itself if it is there): batches are then gathered there."""
        if self.tokens.device == device:
            return self
        moved = TokenSplit(self.tokens.to(device), self.offsets.to(device))
        if self._positions is not None:
            moved._positions = self._positions.to(device)
        return moved

    @property
    def num_items(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_windows(self) -> int:
        return len(self.tokens)

    def positions(self) -> torch.Tensor:
        """Each token's position within its item, computed once (two bytes a token for items of
        up to 32,767 characters): a window's context then needs no search for its item."""
        if self._positions is None:
            small = not self.num_items or int(self.offsets.diff().max()) <= 2**15
            dtype = torch.int16 if small else torch.int32
            positions = torch.empty(len(self.tokens), dtype=dtype, device=self.tokens.device)
            for start in range(0, len(self.tokens), CHUNK):  # bounded memory on large files
                token = torch.arange(start, min(start + CHUNK, len(self.tokens)), device=self.tokens.device)
                item = torch.searchsorted(self.offsets, token, right=True) - 1
                positions[start : start + CHUNK] = token - self.offsets[item]
            self._positions = positions
        return self._positions

    def windows(self, ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Contexts ``(*ids.shape, block_size)`` and targets ``ids.shape`` of window examples."""
        flat = ids.reshape(-1)
        back = torch.arange(-block_size, 0, device=flat.device)
        outside = self.positions()[flat].long()[:, None] + back < 0  # before the item's start
        context = self.tokens[(flat[:, None] + back).clamp(min=0)].masked_fill(outside, BOUNDARY).long()
        return context.view(*ids.shape, block_size), self.tokens[flat].long().view(ids.shape)

    def sequences(self, ids: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets ``(*ids.shape, width)`` of items ``ids``."""
        flat = ids.reshape(-1)
        start, length = self.offsets[flat], self.offsets[flat + 1] - self.offsets[flat]  # end token included
        t = torch.arange(width, device=flat.device)
        inside = t[None, :] < length[:, None]
        source = (start[:, None] + t).clamp(max=len(self.tokens) - 1)
        y = torch.where(inside, self.tokens[source].long(), IGNORE)
        previous = self.tokens[(source - 1).clamp(min=0)].long()  # input t is target t - 1
        x = torch.where(inside & (t[None, :] >= 1), previous, BOUNDARY)
        return x.view(*ids.shape, width), y.view(*ids.shape, width)


class Examples(torch.utils.data.Dataset):
    """``dataset[ids]`` gathers the examples ``ids`` (a tensor of any shape, or a slice) of a split."""

    def __init__(self, split: TokenSplit, kind: str, block_size: int):
        self.split, self.kind, self.block_size = split, kind, block_size

    def __len__(self) -> int:
        return self.split.num_windows if self.kind == "windows" else self.split.num_items

    def __getitem__(self, ids):
        if isinstance(ids, slice):
            ids = torch.arange(*ids.indices(len(self)))
        gather = self.split.windows if self.kind == "windows" else self.split.sequences
        return gather(torch.as_tensor(ids), self.block_size)
