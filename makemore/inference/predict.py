"""``python -m makemore predict``: sample or score items from a checkpoint alone.

With no arguments it samples 20 items from the best checkpoint of the newest run under
``checkpoints/`` (the equivalent of the reference makemore's ``--sample-only``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from makemore.data.items import BUNDLED_DATASET, read_items, split_items
from makemore.errors import MakemoreError
from makemore.inference import constraints as wanted
from makemore.inference.best import best_items
from makemore.inference.constrained import sample_constrained
from makemore.inference.generate import sample, score
from makemore.inference.loading import load
from makemore.training.atomic_io import write_atomically
from makemore.training.runs import best_checkpoint, check_writable


def newest_best_checkpoint(root: str | Path) -> Path:
    """The best checkpoint (lowest val_loss in its name; else last.ckpt) of the newest run."""
    found = {run: best_checkpoint(run) for run in Path(root).glob("*") if run.is_dir()}
    runs = [run for run, best in found.items() if best is not None]
    if not runs:
        raise MakemoreError(f"no run with a checkpoint under {root}/; train one with fit or pass --ckpt_path PATH")
    return found[max(runs, key=lambda run: max(f.stat().st_mtime for f in run.glob("*.ckpt")))]


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
    p.add_argument("--output", default=None, help="also write the items, one per line, to this new file")
    p.add_argument("--overwrite", action="store_true", help="let --output replace an existing file")
    p.add_argument("--score", nargs="+", default=None, metavar="ITEM", help="score these items instead of sampling")
    p.add_argument("--score_file", default=None, help="score the items of this file (one per line)")
    wanted.add_arguments(p)  # constraints, --best, --sort
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


def check_output(args: argparse.Namespace) -> None:
    """Before any sampling: the output file may be written, and replaces nothing unasked."""
    if args.output is None:
        return
    path = Path(args.output)
    if path.is_dir():
        raise MakemoreError(f"--output {path} is a directory; name a file")
    if path.exists() and not args.overwrite:
        raise MakemoreError(f"--output {path} exists; pass --overwrite to replace it, or name a new file")
    if not path.parent.is_dir():
        raise MakemoreError(f"--output {path}: {path.parent} is not a folder; create it first or name another")
    check_writable(path.parent)


def unknown_chars(text: str, vocab) -> str:
    """What is wrong with ``text`` for this vocabulary, or '' if nothing."""
    unknown = sorted(set(text) - set(vocab.chars))
    return f"characters the model does not know: {''.join(unknown)!r}" if unknown else ""


def check_chars(text: str, what: str, vocab) -> None:
    if problem := unknown_chars(text, vocab):
        raise MakemoreError(f"{what} {text!r} has {problem}; valid characters: {vocab.chars!r}")


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


def score_items(loaded, items: list[str], sort: str = "total") -> None:
    """Print each scorable item's score; list the others and end with one error line for them."""
    longest = loaded.block_size - 1  # a sequence net sees the boundary token and this many characters
    window = loaded.net.examples == "windows"
    good, bad = [], []
    for item in (item.strip() for item in items):  # as training reads its items
        problem = "it is empty" if not item else unknown_chars(item, loaded.vocab)
        if not problem and not window and len(item) > longest:
            problem = f"it is longer than the {longest} characters this model sees (its block_size)"
        (bad if problem else good).append((item, problem))
    rows = score(loaded.net, loaded.vocab, [item for item, _ in good]) if good else []
    for item, total, mean in sorted(rows, key=lambda row: row[2]) if sort == "per_char" else rows:
        print(f"{item}\t{total:.4f}\t{mean:.4f}")
    if rows:
        print(perplexity_line(rows), file=sys.stderr)
    for item, problem in bad:
        print(f"not scored: {item!r}: {problem}", file=sys.stderr)
    if bad:
        raise MakemoreError(
            f"{len(bad)} of {len(items)} items could not be scored (listed above); valid characters: "
            f"{loaded.vocab.chars!r}"
        )


def perplexity_line(rows: list[tuple[str, float, float]]) -> str:
    """One line on the scored list as a whole: NLL per character (end tokens included), perplexity, bits."""
    characters = sum(len(item) + 1 for item, _, _ in rows)
    nats = -sum(total for _, total, _ in rows) / characters
    return (
        f"{len(rows)} items, {characters} characters with end tokens: {nats:.4f} nats per character, "
        f"perplexity {math.exp(nats):.3f}, {nats / math.log(2):.4f} bits per character"
    )


def command(argv: list[str]) -> None:
    """``makemore predict``: a user's mistake ends in one ``error:`` line and exit status 2."""
    try:
        main(argv)
    except MakemoreError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    check(args)
    wanted.check_args(args)
    check_output(args)
    path = Path(args.ckpt_path) if args.ckpt_path else newest_best_checkpoint(args.checkpoint_root)
    print(f"checkpoint: {path}", file=sys.stderr)
    loaded = load(path)
    net, vocab = loaded.net, loaded.vocab
    window = net.examples == "windows"
    if args.score or args.score_file:
        items = list(args.score or []) + (read_items(args.score_file, "--score_file") if args.score_file else [])
        score_items(loaded, items, args.sort)
        return
    # A sequence net sees block_size positions: the boundary token and block_size - 1 characters.
    limit = 30 if window else loaded.block_size - 1
    max_length = args.max_length or limit
    if max_length > limit and not window:
        raise MakemoreError(f"--max_length {max_length} is more than this model's {limit} characters (block_size)")
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    constraints = wanted.from_args(args, vocab, loaded.data, max_length)
    if args.best is not None:
        return print_best(loaded, constraints, args, max_length)
    items = [] if not constraints.asked else sample_all(loaded, constraints, args, max_length, generator)
    for prefix in (args.prefix or [""]) if not constraints.asked else []:  # else sampled above
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
        text = "".join(item + "\n" for item in items).encode("utf-8")
        write_atomically(args.output, lambda f: f.write(text))
        print(f"wrote {len(items)} items to {args.output}", file=sys.stderr)


def sample_all(loaded, constraints, args: argparse.Namespace, max_length: int, generator) -> list[str]:
    """``--num_samples`` items per prefix that satisfy the constraints, and on stderr the share of
    candidates that did."""
    items, drawn = [], 0
    for prefix in args.prefix or [""]:
        kept, used = sample_constrained(
            loaded.net,
            loaded.vocab,
            constraints,
            args.num_samples,
            prefix,
            max_length,
            args.temperature,
            args.top_k,
            args.top_p,
            generator,
            args.max_draws or wanted.DEFAULT_MAX_DRAWS,
        )
        items, drawn = items + kept, drawn + used
    print(wanted.share_line(len(items), drawn), file=sys.stderr)
    return items


def print_best(loaded, constraints, args: argparse.Namespace, max_length: int) -> None:
    """``--best K``: per prefix, the K most probable satisfying items with their scores."""
    budget = args.max_expansions or wanted.DEFAULT_MAX_EXPANSIONS
    for prefix in args.prefix or [""]:
        found = best_items(loaded.net, loaded.vocab, constraints, args.best, prefix, max_length, budget)
        rows = sorted(found.rows, key=lambda row: row[2]) if args.sort == "per_char" else found.rows
        for item, total, mean in rows:
            print(f"{item}\t{total:.4f}\t{mean:.4f}")
        what = f"items starting with {prefix!r}" if prefix else "items"
        if len(found.rows) < args.best and found.exhausted:
            print(f"only {len(found.rows)} {what} of at most {max_length} characters satisfy them all", file=sys.stderr)
        elif len(found.rows) < args.best:
            print(
                f"the search ended after --max_expansions {budget:,} prefixes with {len(found.rows)} of "
                f"{args.best} {what}; raise it for more",
                file=sys.stderr,
            )
