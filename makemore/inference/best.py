"""The K most probable items that satisfy the constraints: an exact best-first search.

A priority queue holds prefixes and complete items by their log-probability under the model
(the sum of its next-token log-probabilities, end token included, as ``score`` gives). Growing a
prefix only adds log-probabilities of at most 0, so no item below a prefix is more probable than
the prefix: the complete items leave the queue most probable first, and the first K that satisfy
the constraints are the K best. A prefix with a banned piece or longer than ``max_length`` is
never queued, a complete item is queued only if it satisfies every check, and the most probable
prefixes are expanded several at once, in one batched forward pass.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import torch

from makemore.data.vocab import BOUNDARY, Vocabulary
from makemore.inference.constraints import Constraints
from makemore.models.base import CharModel
from makemore.sampling.decoding import recompute


@dataclass
class Found:
    rows: list[tuple[str, float, float]]  # (item, total log-probability, mean NLL per character)
    expansions: int  # prefixes expanded
    exhausted: bool  # the queue ran empty: no other item satisfies the constraints


@torch.no_grad()
def next_log_probs(net: CharModel, prefixes: list[tuple[int, ...]]) -> list[list[float]]:
    """``log P(token | prefix)`` for every token after each prefix (token ids, boundary first
    left out), one forward pass per prefix length."""
    device = next(iter(net.buffers()), next(iter(net.parameters()), torch.empty(0))).device
    out: list[list[float] | None] = [None] * len(prefixes)
    by_length: dict[int, list[int]] = {}
    for i, prefix in enumerate(prefixes):
        by_length.setdefault(len(prefix), []).append(i)
    for indices in by_length.values():
        sequence = torch.tensor([[BOUNDARY, *prefixes[i]] for i in indices], device=device)
        rows = recompute(net, sequence).double().log_softmax(dim=-1).tolist()
        for i, row in zip(indices, rows):
            out[i] = row
    return out


def best_items(
    net: CharModel,
    vocab: Vocabulary,
    constraints: Constraints,
    k: int,
    prefix: str = "",
    max_length: int = 30,
    max_expansions: int = 20_000,
    batch: int = 256,
) -> Found:
    """The ``k`` most probable items starting with ``prefix`` that satisfy ``constraints``, at most
    ``max_length`` characters, most probable first; fewer if the search expanded
    ``max_expansions`` prefixes first or if no more exist."""
    automaton = constraints.automaton(vocab)
    start = tuple(vocab.encode(prefix))
    base = sum(next_log_probs(net, [start[:i]])[0][start[i]] for i in range(len(start)))  # log P(prefix)
    order = itertools.count()  # ties leave the queue in the order they entered it
    queue = [(-base, next(order), start, automaton.walk(list(start)), False)]
    rows, expansions = [], 0
    while queue and len(rows) < k:
        if queue[0][4]:  # a complete item at the top: nothing left in the queue is more probable
            neg, _, ids, _, _ = heapq.heappop(queue)
            item = vocab.decode(ids)
            rows.append((item, -neg, neg / (len(ids) + 1)))
            continue
        if expansions >= max_expansions:
            break
        group = []
        while queue and not queue[0][4] and len(group) < batch and expansions + len(group) < max_expansions:
            group.append(heapq.heappop(queue))
        expansions += len(group)
        for (neg, _, ids, node, _), log_probs in zip(group, next_log_probs(net, [g[2] for g in group])):
            total = -neg
            if len(ids) >= max(1, constraints.min_length) and constraints.final_ok(vocab.decode(ids)):
                heapq.heappush(queue, (-(total + log_probs[BOUNDARY]), next(order), ids, node, True))
            if len(ids) >= max_length:
                continue
            for token in range(1, vocab.size):
                child = automaton.step(node, token)
                if log_probs[token] == float("-inf") or automaton.is_banned(child):
                    continue
                heapq.heappush(queue, (-(total + log_probs[token]), next(order), (*ids, token), child, False))
    return Found(rows, expansions, exhausted=not queue)
