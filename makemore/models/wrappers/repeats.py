"""Which training items look like items that repeat: a score for ``NewItems``.

An item the training split holds twice has already shown that it repeats (on names.txt: a name
given to girls and to boys); an item held once may or may not. Two character n-gram models, one
of the repeated items and one of the single ones, score every seen item by the log of their
likelihood ratio. Each item is left out of the model that holds it, so an item is scored as
the held-out item it will be compared with, not as one the model has counted.
"""

from __future__ import annotations

import math
from collections import Counter

START = -1  # pads the context before an item's first character (no token has this id)


def repeat_scores(items: list[list[int]], counts: list[int], order: int, vocab_size: int) -> list[float]:
    """``log P_repeated(x) - log P_single(x)`` for each item (token ids, end token included)."""
    repeated = _Counts(order, vocab_size)
    single = _Counts(order, vocab_size)
    for item, count in zip(items, counts):
        (repeated if count > 1 else single).add(item)
    scores = []
    for item, count in zip(items, counts):
        own, other = (repeated, single) if count > 1 else (single, repeated)
        own.add(item, -1)  # leave the item out of its own model while it is scored
        score = own.log_prob(item) - other.log_prob(item)
        own.add(item, +1)
        scores.append(score if count > 1 else -score)
    return scores


class _Counts:
    """Character n-grams of some items: ``P(c | h)`` interpolates every order from 0 (uniform) up
    to ``order - 1`` characters of context, each with add-half smoothing towards the one below."""

    SMOOTHING = 0.5

    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError(f"the n-gram order must be at least 1, got {order}")
        self.order, self.vocab_size = order, vocab_size
        self.contexts: Counter = Counter()
        self.pairs: Counter = Counter()

    def _grams(self, item: list[int]):
        padded = [START] * (self.order - 1) + list(item)
        for i in range(self.order - 1, len(padded)):
            yield [(tuple(padded[i - j : i]), padded[i]) for j in range(self.order)]

    def add(self, item: list[int], times: int = 1) -> None:
        for grams in self._grams(item):
            for context, token in grams:
                self.contexts[context] += times
                self.pairs[context, token] += times

    def log_prob(self, item: list[int]) -> float:
        total, weight = 0.0, self.SMOOTHING * self.vocab_size
        for grams in self._grams(item):
            p = 1.0 / self.vocab_size
            for context, token in grams:  # shortest context first: each order backs off to the last
                p = (self.pairs[context, token] + weight * p) / (self.contexts[context] + weight)
            total += math.log(p)
        return total
