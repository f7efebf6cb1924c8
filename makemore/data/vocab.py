"""Characters <-> token ids, with one reserved boundary token."""

from __future__ import annotations

from collections.abc import Iterable

BOUNDARY = 0  # starts every item and ends it; no character maps to it


class Vocabulary:
    """Sorted characters of the data get ids 1..n; id 0 is the boundary token.

    A '.' in the data is an ordinary character like any other: the boundary is a reserved id,
    not a character, and it decodes to nothing.
    """

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError(f"vocabulary characters must be distinct, got {chars!r}")
        self.chars = chars
        self.stoi = {ch: i + 1 for i, ch in enumerate(chars)}

    @classmethod
    def from_items(cls, items: Iterable[str]) -> Vocabulary:
        return cls("".join(sorted(set("".join(items)))))

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    def encode(self, item: str) -> list[int]:
        return [self.stoi[ch] for ch in item]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)
