"""Sampling under constraints, exactly: rejection with early pruning, batch by batch.

A batch of candidates is drawn with the incremental decoder as ``sample`` draws items, from the
model's own next-token distributions (temperature, top-k and top-p as asked), which are never
changed. A candidate is dropped as soon as no completion of it can satisfy the constraints (a
banned piece has appeared; it drew a character past ``max_length``), and at its end token if it
fails a check of complete items (``min_length``, suffix, required pieces, excluded items,
repeats). The items kept are therefore distributed as unconstrained samples with the failures
thrown away, i.e. as the model's distribution restricted to the satisfying items. With
``unique``, an item produced before rejects a later copy: the distinct items in order of first
appearance. Batches follow one another until ``num_samples`` items are kept or ``max_draws``
candidates are drawn.
"""

from __future__ import annotations

import math

import torch

from makemore.data.vocab import BOUNDARY, Vocabulary
from makemore.errors import MakemoreError
from makemore.inference.constraints import BanAutomaton, Constraints
from makemore.inference.controls import pick_next
from makemore.models.base import CharModel

MIN_BATCH, MAX_BATCH = 32, 4096


@torch.no_grad()
def draw(
    net: CharModel,
    vocab: Vocabulary,
    batch: int,
    prefix: str,
    max_length: int,
    min_length: int = 1,
    automaton: BanAutomaton | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> list[tuple[int, str]]:
    """One batch of ``batch`` candidates: ``(row, item)`` for each one that ended with its end
    token within ``min_length..max_length`` characters and no banned piece, in row order.

    Every row draws from the same distributions as ``sample``'s (the first character of an item
    without prefix is never its end, as there); a row that is dropped stops counting but the
    batch goes on for the others."""
    device = next(iter(net.buffers()), next(iter(net.parameters()), torch.empty(0))).device
    start = vocab.encode(prefix)
    sequence = torch.tensor([[BOUNDARY, *start]] * batch, device=device)
    state = net.start_decoding(batch, device)
    logits = net.decode_step(sequence, state)
    alive = torch.ones(batch, dtype=torch.bool, device=device)  # still drawing characters
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # drew its end token in time
    if automaton is not None:
        table, banned = automaton.table.to(device), automaton.banned.to(device)
        node = torch.full((batch,), automaton.walk(start), dtype=torch.long, device=device)
    drawn = []
    last = max_length - len(start)  # the position whose only acceptable token is the end
    for position in range(last + 1):
        if position == 0 and not prefix:  # an item has a character before its end: never sample ""
            logits = logits.clone()
            logits[:, BOUNDARY] = float("-inf")
        token = pick_next(logits, temperature, top_k, top_p, generator).masked_fill(~alive, BOUNDARY)
        stop = alive & (token == BOUNDARY)
        ended |= stop
        alive &= ~stop
        if position == last:  # the rows still alive drew a character past max_length
            break
        if automaton is not None:
            node = table[node, token]
            alive &= ~banned[node]
        drawn.append(token)
        if not alive.any():
            break
        logits = net.decode_step(token[:, None], state)
    tokens = torch.stack(drawn, dim=1) if drawn else torch.zeros(batch, 0, dtype=torch.long, device=device)
    lengths = len(start) + (tokens != BOUNDARY).long().cumprod(dim=1).sum(dim=1)
    ok = ended & (lengths >= min_length)
    rows = ok.nonzero().squeeze(1).tolist()
    out = []
    for row, ids in zip(rows, tokens[ok].tolist()):
        out.append((row, prefix + vocab.decode(ids[: ids.index(BOUNDARY)] if BOUNDARY in ids else ids)))
    return out


def sample_constrained(
    net: CharModel,
    vocab: Vocabulary,
    constraints: Constraints,
    num_samples: int,
    prefix: str = "",
    max_length: int = 30,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    max_draws: int = 100_000,
) -> tuple[list[str], int]:
    """``num_samples`` items that start with ``prefix`` and satisfy ``constraints``, and how many
    candidates were drawn for them (every candidate up to the one that completed the count).

    Raises ``MakemoreError`` when ``max_draws`` candidates gave fewer items."""
    automaton = constraints.automaton(vocab) if constraints.banned else None
    items: list[str] = []
    drawn = 0
    while len(items) < num_samples and drawn < max_draws:
        need = num_samples - len(items)
        share = (len(items) + 1) / (drawn + 2)  # the kept share so far, pulled towards 1/2 at the start
        batch = min(max(MIN_BATCH, math.ceil(need / share) + 8), MAX_BATCH, max_draws - drawn)
        if drawn == 0:
            batch = min(max(MIN_BATCH, num_samples), MAX_BATCH, max_draws)  # hope that most are kept
        candidates = draw(
            net,
            vocab,
            batch,
            prefix,
            max_length,
            constraints.min_length,
            automaton,
            temperature,
            top_k,
            top_p,
            generator,
        )
        used = batch
        for row, item in candidates:
            if constraints.final_ok(item):
                constraints.keep(item)
                items.append(item)
                if len(items) == num_samples:
                    used = row + 1  # the rows after it were drawn for nothing and are not counted
                    break
        drawn += used
    if len(items) < num_samples:
        what = f"items starting with {prefix!r}" if prefix else "items"
        raise MakemoreError(
            f"only {len(items)} of {num_samples} {what} satisfied the constraints in --max_draws {max_draws:,} "
            f"candidates ({100 * len(items) / max(drawn, 1):.3g}% kept); loosen them or raise --max_draws"
        )
    return items, drawn
