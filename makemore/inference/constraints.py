"""What an item must satisfy: length bounds, a suffix, required and banned pieces, items to avoid.

``Constraints`` holds them and answers two questions: can a prefix still lead to a satisfying
item (``BanAutomaton`` says so for banned pieces, one table lookup per token for all of them;
the length so far for ``max_length``), and does a complete item satisfy them all. Sampling
(``makemore.inference.constrained``) and the best-first search (``makemore.inference.best``)
never change the model's probabilities: they drop the candidates that fail, as early as that is
certain. ``from_args`` turns predict's options into one, or ends in one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch

from makemore.data.items import BUNDLED_DATASET, read_items
from makemore.data.vocab import Vocabulary
from makemore.digests import file_fingerprint, same_file
from makemore.errors import MakemoreError

DEFAULT_MAX_DRAWS = 100_000
DEFAULT_MAX_EXPANSIONS = 20_000


class BanAutomaton:
    """Aho-Corasick over token ids: ``table[state, token]`` is the next state and ``banned[state]``
    says that a banned piece has just ended, so every item through this state is dropped.

    State 0 is the start (nothing matched). With no pieces there is that state alone."""

    def __init__(self, pieces: list[list[int]], vocab_size: int):
        children: list[dict[int, int]] = [{}]
        ends = [False]
        for piece in pieces:
            node = 0
            for token in piece:
                if token not in children[node]:
                    children.append({})
                    ends.append(False)
                    children[node][token] = len(children) - 1
                node = children[node][token]
            ends[node] = True
        table = [[0] * vocab_size for _ in children]
        fail = [0] * len(children)
        queue = deque()
        for token, child in children[0].items():
            table[0][token] = child
            queue.append(child)
        while queue:  # breadth first: a node's failure link is settled before its children's
            node = queue.popleft()
            ends[node] = ends[node] or ends[fail[node]]
            for token in range(vocab_size):
                child = children[node].get(token)
                if child is None:
                    table[node][token] = table[fail[node]][token]
                else:
                    fail[child] = table[fail[node]][token]
                    table[node][token] = child
                    queue.append(child)
        self.table = torch.tensor(table, dtype=torch.long)
        self.banned = torch.tensor(ends, dtype=torch.bool)
        self._rows = table  # the same table as lists, for the search's scalar steps
        self._ends = ends

    def walk(self, tokens: list[int], state: int = 0) -> int:
        """The state after ``tokens``, from ``state``."""
        for token in tokens:
            state = self._rows[state][token]
        return state

    def step(self, state: int, token: int) -> int:
        return self._rows[state][token]

    def is_banned(self, state: int) -> bool:
        return self._ends[state]


@dataclass
class Constraints:
    """What every produced item must satisfy (``None`` / empty: no such constraint).

    ``excluded`` holds whole items never to produce (``--exclude_file``, and with ``--new_only``
    the items of the training data file). With ``unique`` an item already produced in this run
    (``produced``) is rejected like an excluded one."""

    min_length: int = 1
    max_length: int | None = None
    suffix: str = ""
    contains: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()
    excluded: frozenset[str] = frozenset()
    unique: bool = False
    asked: bool = False  # some constraint beyond today's sampling was asked for
    produced: set[str] = field(default_factory=set)

    def automaton(self, vocab: Vocabulary) -> BanAutomaton:
        """The banned pieces as token ids; a piece with a character the model lacks can never appear."""
        known = [piece for piece in self.banned if set(piece) <= set(vocab.chars)]
        return BanAutomaton([vocab.encode(piece) for piece in known], vocab.size)

    def final_ok(self, item: str) -> bool:
        """The checks that only a complete item can fail: suffix, required pieces, excluded items,
        repeats. Lengths and banned pieces are the callers' (they prune on them while drawing)."""
        return (
            item.endswith(self.suffix)
            and all(piece in item for piece in self.contains)
            and item not in self.excluded
            and not (self.unique and item in self.produced)
        )

    def satisfies(self, item: str) -> bool:
        """Every check of one complete item, the slow way (for tests); repeats are the list's."""
        long_enough = len(item) >= max(1, self.min_length)
        short_enough = self.max_length is None or len(item) <= self.max_length
        clean = not any(piece in item for piece in self.banned)
        pieces = item.endswith(self.suffix) and all(piece in item for piece in self.contains)
        return long_enough and short_enough and clean and pieces and item not in self.excluded

    def keep(self, item: str) -> None:
        """Record an item as produced (for ``unique``)."""
        if self.unique:
            self.produced.add(item)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """predict's options for constraints, the best-first search and the order of scores."""
    count = _whole_number
    p.add_argument("--new_only", action="store_true", help="never an item of the data file the model was trained on")
    p.add_argument(
        "--data_path",
        default=None,
        help="the data file the checkpoint was trained on, if it moved (for --new_only and the labels)",
    )
    p.add_argument("--unique", action="store_true", help="no item twice in one run")
    p.add_argument("--min_length", type=count("--min_length"), default=None, help="fewest characters per item")
    p.add_argument("--suffix", default=None, help="end every item with this")
    p.add_argument("--contains", action="append", default=None, help="every item holds this piece (repeatable)")
    p.add_argument("--ban", action="append", default=None, help="no item holds this piece (repeatable)")
    p.add_argument("--ban_file", action="append", default=None, help="no item holds a piece of this file's lines")
    p.add_argument("--exclude_file", action="append", default=None, help="never an item of this file's lines")
    p.add_argument(
        "--max_draws",
        type=count("--max_draws"),
        default=None,
        help=f"candidates drawn at most per prefix under constraints before giving up (default {DEFAULT_MAX_DRAWS:,})",
    )
    p.add_argument(
        "--best", type=count("--best"), default=None, metavar="K", help="the K most probable items, with scores"
    )
    p.add_argument(
        "--max_expansions",
        type=count("--max_expansions"),
        default=None,
        help=f"prefixes --best expands at most (default {DEFAULT_MAX_EXPANSIONS:,})",
    )
    p.add_argument(
        "--sort",
        choices=("total", "per_char"),
        default="total",
        help="order scores by total log-probability or by mean NLL per character",
    )


def _whole_number(flag: str):
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise MakemoreError(f"{flag} must be a whole number, got {text!r}") from None

    return parse


def check_args(args: argparse.Namespace) -> None:
    """Before loading anything: the new options' values and how they combine."""
    for flag in ("min_length", "max_draws", "best", "max_expansions"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise MakemoreError(f"--{flag} must be at least 1, got {value}")
    if args.min_length is not None and args.max_length is not None and args.min_length > args.max_length:
        raise MakemoreError(f"--min_length {args.min_length} is more than --max_length {args.max_length}")
    for flag, piece in [("--suffix", args.suffix), *(("--contains", c) for c in args.contains or [])]:
        if piece is not None and not piece:
            raise MakemoreError(f"{flag} {piece!r} is empty; pass some characters")
    for piece in args.ban or []:
        if not piece:
            raise MakemoreError("--ban '' would ban every item; pass some characters")
    if args.best is not None:
        if args.score or args.score_file:
            raise MakemoreError("--best searches for items and --score/--score_file score given ones; pass one")
        if args.temperature != 1.0 or args.top_k is not None or args.top_p is not None:
            raise MakemoreError(
                "--best ranks items by the model's own log-probability; drop --temperature, --top_k and --top_p"
            )
        if args.output is not None:
            raise MakemoreError("--output writes sampled items; redirect the output of --best instead")
    if args.max_expansions is not None and args.best is None:
        raise MakemoreError("--max_expansions bounds --best; pass --best K or drop it")


def from_args(args: argparse.Namespace, vocab: Vocabulary, data: dict, max_length: int) -> Constraints:
    """The constraints predict's options ask for, checked against the model's vocabulary."""
    known = set(vocab.chars)
    for flag, piece in [("--suffix", args.suffix), *(("--contains", c) for c in args.contains or [])]:
        if piece is not None and set(piece) - known:
            unknown = "".join(sorted(set(piece) - known))
            raise MakemoreError(
                f"{flag} {piece!r} has characters the model does not know: {unknown!r}; valid characters: "
                f"{vocab.chars!r}"
            )
    banned = list(args.ban or [])
    for path in args.ban_file or []:
        banned += read_items(path, "--ban_file")
    excluded = set()
    for path in args.exclude_file or []:
        excluded.update(read_items(path, "--exclude_file"))
    if args.new_only:
        excluded.update(training_items(data, args.data_path))
    min_length = args.min_length or 1
    if min_length > max_length:
        raise MakemoreError(f"--min_length {min_length} is more than the {max_length} characters items may have")
    for flag, piece in [("--suffix", args.suffix), *(("--contains", c) for c in args.contains or [])]:
        if piece is not None and len(piece) > max_length:
            raise MakemoreError(f"{flag} {piece!r} is longer than the {max_length} characters items may have")
    for prefix in args.prefix or []:
        if set(prefix) - known:
            unknown = "".join(sorted(set(prefix) - known))
            raise MakemoreError(
                f"prefix {prefix!r} has characters the model does not know: {unknown!r}; valid characters: "
                f"{vocab.chars!r}"
            )
        if len(prefix) > max_length:
            raise MakemoreError(f"prefix {prefix!r} is longer than --max_length {max_length}")
        if hit := next((piece for piece in banned if piece in prefix), None):
            raise MakemoreError(f"prefix {prefix!r} holds the banned piece {hit!r}; no item could start with it")
    asked = any(
        [
            args.new_only,
            args.unique,
            args.min_length,
            args.suffix,
            args.contains,
            banned,
            args.exclude_file,
            args.max_length,
        ]
    )
    return Constraints(
        min_length=min_length,
        max_length=max_length,
        suffix=args.suffix or "",
        contains=tuple(args.contains or ()),
        banned=tuple(dict.fromkeys(banned)),
        excluded=frozenset(excluded),
        unique=args.unique,
        asked=asked,
    )


def training_file(data: dict, data_path: str | None, why: str = "--new_only") -> str:
    """The data file a checkpoint was trained on, checked against the fingerprint it saved;
    ``data`` is its data settings (``path``: None is the bundled file; ``data_file``: its
    fingerprint, if saved). ``data_path`` names it where it moved. One line if it is not there."""
    recorded = data.get("data_file") if isinstance(data.get("data_file"), dict) else {}
    if data_path is None and not recorded and "split_seed" not in data:  # written before data settings were saved
        raise MakemoreError(
            f"{why}: the checkpoint does not say which data file it was trained on; pass it with --data_path"
        )
    bundled = data.get("path") is None  # wherever this copy of makemore keeps it
    path = data_path or (BUNDLED_DATASET if bundled else recorded.get("path") or data["path"])
    if not Path(path).is_file():
        raise MakemoreError(
            f"{why} needs the data file the checkpoint was trained on, {path}, which is not there; "
            "pass that file with --data_path"
        )
    if recorded.get("sha256") and not same_file(recorded, file_fingerprint(path)):
        raise MakemoreError(
            f"{why}: {path} is not the data file the checkpoint was trained on ({recorded['size']} bytes, "
            f"sha256 {recorded['sha256'][:12]}...); pass that file with --data_path"
        )
    return str(path)


def training_items(data: dict, data_path: str | None) -> set[str]:
    """Every item (all splits) of the data file a checkpoint was trained on."""
    return set(read_items(training_file(data, data_path), "--data_path"))


def share_line(kept: int, drawn: int) -> str:
    """stderr's report of what the constraints cost: the share of candidates kept, with a 95% interval."""
    share = kept / drawn if drawn else 0.0
    margin = 1.96 * math.sqrt(share * (1 - share) / drawn) if drawn else 0.0
    return (
        f"constraints kept {kept:,} of {drawn:,} candidates drawn ({100 * share:.2f}% ± {100 * margin:.2f}%: "
        "an estimate of the probability the model gives to items that satisfy them)"
    )
