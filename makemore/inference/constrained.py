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
from weakref import WeakKeyDictionary

import torch

from makemore.data.vocab import BOUNDARY, Vocabulary
from makemore.errors import MakemoreError
from makemore.inference.constraints import BanAutomaton, Constraints
from makemore.models.base import CharModel
from makemore.sampling.controls import pick_next

MIN_BATCH, MAX_BATCH = 32, 4096
_ROW_DIMS: WeakKeyDictionary = WeakKeyDictionary()  # net -> where its decoding state keeps rows


class _Unselectable(Exception):
    """A decoding state whose rows cannot be told apart: the batch is then never narrowed."""


def row_dims(net: CharModel, device) -> object:
    """The decoding state's structure with, at each tensor, the dimension that holds the rows
    (None: shared by all rows), found by comparing the states of batches of 1 and 2 after one
    token; None if some leaf does not say. Dropping finished rows from the state this way works
    for any family that keeps per-row tensors, without asking it."""
    if net not in _ROW_DIMS:
        states = []
        for n in (1, 2):
            state = net.start_decoding(n, device)
            net.decode_step(torch.full((n, 1), BOUNDARY, device=device), state)
            states.append(state)
        try:
            _ROW_DIMS[net] = _dims(*states)
        except _Unselectable:
            _ROW_DIMS[net] = None
    return _ROW_DIMS[net]


def _dims(one, two):
    if isinstance(one, torch.Tensor) and isinstance(two, torch.Tensor):
        differ = [d for d, (a, b) in enumerate(zip(one.shape, two.shape)) if a != b]
        if (
            one.dim() != two.dim()
            or len(differ) > 1
            or differ
            and (one.shape[differ[0]], two.shape[differ[0]]) != (1, 2)
        ):
            raise _Unselectable
        return differ[0] if differ else None
    if type(one) is not type(two):
        raise _Unselectable
    if isinstance(one, dict):
        if one.keys() != two.keys():
            raise _Unselectable
        return {key: _dims(one[key], two[key]) for key in one}
    if isinstance(one, (list, tuple)):
        if len(one) != len(two):
            raise _Unselectable
        return type(one)(_dims(a, b) for a, b in zip(one, two))
    if one is None or isinstance(one, (int, float, str)) and one == two:
        return None
    raise _Unselectable


def select_rows(state, dims, keep: torch.Tensor):
    """The decoding state of rows ``keep`` alone (``dims`` from ``row_dims``)."""
    if dims is None:
        return state
    if isinstance(dims, int):
        return state.index_select(dims, keep)
    if isinstance(dims, dict):
        return {key: select_rows(state[key], dims[key], keep) for key in state}
    return type(state)(select_rows(part, dim, keep) for part, dim in zip(state, dims))


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
    without prefix is never its end, as there). Rows that ended or were dropped leave the batch
    once they are half of it, so the net computes little for them."""
    device = next(iter(net.buffers()), next(iter(net.parameters()), torch.empty(0))).device
    start = vocab.encode(prefix)
    sequence = torch.tensor([[BOUNDARY, *start]] * batch, device=device)
    state = net.start_decoding(batch, device)
    logits = net.decode_step(sequence, state)
    dims = row_dims(net, device)
    rows = torch.arange(batch, device=device)  # the batch's rows that are still in the state
    alive = torch.ones(batch, dtype=torch.bool, device=device)  # of those: still drawing characters
    ended = torch.zeros(batch, dtype=torch.bool, device=device)  # of all rows: drew its end token in time
    if automaton is not None:
        table, banned = automaton.table.to(device), automaton.banned.to(device)
        node = torch.full((batch,), automaton.walk(start), dtype=torch.long, device=device)
    last = max_length - len(start)  # the position whose only acceptable token is the end
    tokens = torch.full((batch, last), BOUNDARY, dtype=torch.long, device=device)
    for position in range(last + 1):
        if position == 0 and not prefix:  # an item has a character before its end: never sample ""
            logits = logits.clone()
            logits[:, BOUNDARY] = float("-inf")
        token = pick_next(logits, temperature, top_k, top_p, generator).masked_fill(~alive, BOUNDARY)
        stop = alive & (token == BOUNDARY)
        ended[rows[stop]] = True
        alive &= ~stop
        if position == last:  # the rows still alive drew a character past max_length
            break
        if automaton is not None:
            node = table[node, token]
            alive &= ~banned[node]
        tokens[rows, position] = token
        left = int(alive.sum())
        if left == 0:
            break
        if dims is not None and 2 * left <= len(alive):
            keep = alive.nonzero().squeeze(1)
            state, rows, alive, token = select_rows(state, dims, keep), rows[keep], alive[keep], token[keep]
            node = node[keep] if automaton is not None else None
        logits = net.decode_step(token[:, None], state)
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
