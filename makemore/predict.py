"""``python -m makemore predict``: sample or score items from a checkpoint alone.

With no arguments it samples 20 items from the best checkpoint of the newest run under
``checkpoints/`` (the equivalent of the reference makemore's ``--sample-only``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from makemore import decoding
from makemore.data import BUNDLED_DATASET, read_items, split_items
from makemore.errors import MakemoreError
from makemore.generate import sample, score
from makemore.loading import load

BEST = re.compile(r"best-step=\d+-val_loss=(\d+(?:\.\d+)?)\.ckpt")


def newest_best_checkpoint(root: str | Path) -> Path:
    """The best checkpoint (lowest val_loss in its name; else last.ckpt) of the newest run."""
    runs = [p for p in Path(root).glob("*") if p.is_dir() and any(p.glob("*.ckpt"))]
    if not runs:
        raise MakemoreError(f"no run with a checkpoint under {root}/; train one with fit or pass --ckpt_path PATH")
    newest = max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.ckpt")))
    best = [(float(m.group(1)), f) for f in newest.glob("best-*.ckpt") if (m := BEST.fullmatch(f.name))]
    if best:
        return min(best)[1]
    return newest / "last.ckpt" if (newest / "last.ckpt").is_file() else sorted(newest.glob("*.ckpt"))[-1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="makemore predict", description=__doc__)
    p.add_argument("--ckpt_path", default=None, help="checkpoint to use (default: best of the newest run)")
    p.add_argument("--checkpoint_root", default="checkpoints", help="where runs are looked for")
    p.add_argument("--num_samples", type=int, default=20, help="items to sample (per prefix)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 means greedy")
    p.add_argument("--top_k", type=int, default=None, help="sample only among the k most likely tokens")
    p.add_argument("--top_p", type=float, default=None, help="sample only within the nucleus of mass p, in (0, 1]")
    p.add_argument("--prefix", action="append", default=None, help="start every item with this (repeatable)")
    p.add_argument("--max_length", type=int, default=None, help="most characters per item (default: what fits)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same samples")
    p.add_argument("--output", default=None, help="also write the items, one per line, to this file")
    p.add_argument("--score", nargs="+", default=None, metavar="ITEM", help="score these items instead of sampling")
    p.add_argument("--score_file", default=None, help="score the items of this file (one per line)")
    return p


def check(args: argparse.Namespace) -> None:
    if args.num_samples <= 0:
        raise MakemoreError(f"--num_samples must be at least 1, got {args.num_samples}")
    if args.temperature < 0:
        raise MakemoreError(f"--temperature must be >= 0 (0 is greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise MakemoreError(f"--top_k must be at least 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise MakemoreError(f"--top_p must be in (0, 1], got {args.top_p}")
    if args.max_length is not None and args.max_length < 1:
        raise MakemoreError(f"--max_length must be at least 1, got {args.max_length}")


def check_chars(text: str, what: str, vocab) -> None:
    unknown = sorted(set(text) - set(vocab.chars))
    if unknown:
        raise MakemoreError(
            f"{what} {text!r} has characters the model does not know: {''.join(unknown)!r}; "
            f"valid characters: {vocab.chars!r}"
        )


def labeller(data: dict):
    """``item -> 'in train' | 'in val' | 'in test' | 'new'`` when the training file is still there."""
    if "split_seed" not in data:
        return None  # a checkpoint from before data settings were saved
    path = data.get("path") or BUNDLED_DATASET
    if not Path(path).is_file():
        return None
    parts = split_items(read_items(path), data["split_seed"], data["train_fraction"], data["val_fraction"])
    sets = dict(zip(("train", "val", "test"), map(set, parts)))
    return lambda item: next((f"in {name}" for name, items in sets.items() if item in items), "new")


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    check(args)
    path = Path(args.ckpt_path) if args.ckpt_path else newest_best_checkpoint(args.checkpoint_root)
    print(f"checkpoint: {path}", file=sys.stderr)
    loaded = load(path)
    net, vocab = loaded.net, loaded.vocab
    window = decoding.is_window_model(net)
    if args.score or args.score_file:
        items = list(args.score or []) + (read_items(args.score_file) if args.score_file else [])
        for item in items:
            check_chars(item, "item", vocab)
        longest = loaded.block_size - 1
        if not window and max(map(len, items)) > longest:
            raise MakemoreError(f"this model scores items of at most {longest} characters (its block_size)")
        for item, total, mean in score(net, vocab, items):
            print(f"{item}\t{total:.4f}\t{mean:.4f}")
        return
    # A sequence net sees block_size positions: the boundary token and block_size - 1 characters.
    limit = 30 if window else loaded.block_size - 1
    max_length = args.max_length or limit
    if max_length > limit and not window:
        raise MakemoreError(f"--max_length {max_length} is more than this model's {limit} characters (block_size)")
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    items = []
    for prefix in args.prefix or [""]:
        check_chars(prefix, "prefix", vocab)
        if len(prefix) > max_length:
            raise MakemoreError(f"prefix {prefix!r} is longer than --max_length {max_length}")
        items += sample(
            net, vocab, args.num_samples, prefix, max_length, args.temperature, args.top_k, args.top_p, generator
        )
    label = labeller(loaded.data)
    labels = [label(item) for item in items] if label else []
    for item, tag in zip(items, labels or [None] * len(items)):
        print(f"{item}\t{tag}" if tag else item)
    if labels:
        new = labels.count("new")
        print(f"{new} of {len(items)} samples are new ({100 * new / len(items):.0f}%)", file=sys.stderr)
    if args.output:
        Path(args.output).write_text("".join(item + "\n" for item in items), encoding="utf-8")
