"""Sampling and scoring items with any net, batched over samples."""

from __future__ import annotations

import torch

from makemore.data.examples import sequences, windows
from makemore.data.vocab import BOUNDARY, Vocabulary
from makemore.models.base import CharModel, nll
from makemore.sampling.controls import pick_next
from makemore.sampling.decoding import recompute


@torch.no_grad()
def sample(
    net: CharModel,
    vocab: Vocabulary,
    num_samples: int,
    prefix: str = "",
    max_length: int = 30,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    incremental: bool = True,
) -> list[str]:
    """``num_samples`` items that start with ``prefix``, at most ``max_length`` characters each.

    Every sample stops at its end token (never before its first character: an empty string is
    not an item, so the first draw is among the characters); the batch stops when all have. ``incremental=False``
    recomputes the whole context at every position (the reference for tests and benchmarks).
    """
    device = next(iter(net.buffers()), next(iter(net.parameters()), torch.empty(0))).device
    start = 1 + len(prefix)  # the boundary token, then the prefix
    # Filled in place (boundary tokens after each item's end): growing it by concatenation would
    # copy it at every position, quadratic in max_length.
    sequence = torch.full((num_samples, 1 + max_length), BOUNDARY, device=device)
    sequence[:, 1:start] = torch.tensor(vocab.encode(prefix), dtype=torch.long, device=device)
    state = net.start_decoding(num_samples, device) if incremental else None
    logits = net.decode_step(sequence[:, :start], state) if incremental else recompute(net, sequence[:, :start])
    finished = torch.zeros(num_samples, dtype=torch.bool, device=device)
    end = start
    for position in range(max_length - len(prefix)):
        if position == 0 and not prefix:  # an item has a character before its end: never sample ""
            logits = logits.clone()
            logits[:, BOUNDARY] = float("-inf")
        token = pick_next(logits, temperature, top_k, top_p, generator)
        token = token.masked_fill(finished, BOUNDARY)
        sequence[:, end] = token
        end += 1
        finished |= token == BOUNDARY
        if finished.all():
            break
        logits = net.decode_step(token[:, None], state) if incremental else recompute(net, sequence[:, :end])
    items = []
    for row in sequence[:, 1:end].tolist():
        items.append(vocab.decode(row[: row.index(BOUNDARY)] if BOUNDARY in row else row))
    return items


@torch.no_grad()
def score(net: CharModel, vocab: Vocabulary, items: list[str]) -> list[tuple[str, float, float]]:
    """``(item, total log-probability, mean NLL per character)`` for each item, end token
    included (so a 4-letter item has 5 predicted characters), most likely first."""
    counts = [len(item) + 1 for item in items]  # predicted characters, the end token included
    if net.examples == "windows":
        x, y = windows(items, vocab, net.block_size)
        per_token = -nll(net(x), y, reduction="none")
        totals = [chunk.sum().item() for chunk in per_token.split(counts)]
    else:
        x, y = sequences(items, vocab, max(counts))
        totals = (-nll(net(x), y, reduction="none").view(y.shape)).sum(dim=1).tolist()
    rows = [(item, total, -total / count) for item, total, count in zip(items, totals, counts)]
    return sorted(rows, key=lambda row: row[1], reverse=True)
