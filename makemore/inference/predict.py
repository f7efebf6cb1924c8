"""``python -m makemore predict``: sample or score items from a checkpoint alone.

With no arguments it samples 20 items from the best checkpoint of the newest run under
``checkpoints/`` (the equivalent of the reference makemore's ``--sample-only``).
"""

from __future__ import annotations

import argparse
import math
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from makemore.data.items import file_kind, item_of, read_items, split_items, stat_problem
from makemore.errors import MakemoreError
from makemore.files.atomic_io import write_atomically, write_new
from makemore.files.runs import best_checkpoint, check_writable, skip_if_being_written
from makemore.inference import constraints as wanted
from makemore.inference.best import best_items
from makemore.inference.constrained import sample_constrained
from makemore.inference.loading import load
from makemore.sampling.generate import sample, score

MAX_SAMPLES = 10_000_000  # items a call: more is surely a typo (and hours of sampling)
MAX_LENGTH = 10_000  # characters an item of a window net, whose context never runs out
CHUNK = 1_000  # items sampled at a time: memory stays bounded (a Transformer's cache is per item)


def newest_best_checkpoint(root: str | Path) -> Path:
    """The best checkpoint (lowest val_loss in its name; else last.ckpt) of the newest run that
    no fit is writing now (its checkpoints are still moving; stderr says it is skipped); with no
    run under ``root``, the pretrained V5 shipped inside the package."""
    found = {run: best_checkpoint(run) for run in Path(root).glob("*") if run.is_dir()}
    runs = sorted(
        (run for run, best in found.items() if best is not None),
        key=lambda run: max(f.stat().st_mtime for f in run.glob("*.ckpt")),
        reverse=True,
    )
    if not runs:
        from makemore.assets import DEFAULT_PRETRAINED, PRETRAINED

        shipped = best_checkpoint(PRETRAINED / DEFAULT_PRETRAINED)
        if shipped is None:  # a broken install
            raise MakemoreError(f"no run with a checkpoint under {root}/; train one with fit or pass --ckpt_path PATH")
        print(f"no run under {root}/; using the pretrained {DEFAULT_PRETRAINED} shipped with makemore", file=sys.stderr)
        return shipped
    newest = next((run for run in runs if not skip_if_being_written(run)), None)
    if newest is None:
        raise MakemoreError(
            f"no run with a checkpoint that no fit is writing now under {root}/; wait for one to end or pass "
            "--ckpt_path PATH"
        )
    return found[newest]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` shows each option's default where it has one (with none, its help says what
    happens), and the description's lines as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return text
        return text if "default" in text else f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """argparse's mistakes too end in one line (not its usage block), exit status 2."""
        raise MakemoreError(f"{message}; see python -m makemore predict --help")


def parser() -> argparse.ArgumentParser:
    description = __doc__.replace("``", "")
    p = Parser(prog="python -m makemore predict", description=description, formatter_class=HelpFormatter)
    p.add_argument("--ckpt_path", default=None, help="checkpoint to use (default: best of the newest run)")
    p.add_argument("--checkpoint_root", default="checkpoints", help="where runs are looked for")
    p.add_argument("--num_samples", type=int, default=20, help="items to sample (per prefix)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 means greedy")
    p.add_argument("--top_k", type=int, default=None, help="sample only among the k most likely tokens")
    p.add_argument("--top_p", type=float, default=None, help="sample only within the nucleus of mass p, in (0, 1]")
    p.add_argument("--prefix", action="append", default=None, help="start every item with this (repeatable)")
    p.add_argument("--max_length", type=int, default=None, help="most characters per item (default: what fits)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same samples (0 <= seed < 2**64)")
    p.add_argument("--output", default=None, help="also write the items, one per line, to this new file")
    p.add_argument("--overwrite", action="store_true", help="let --output replace an existing file")
    p.add_argument("--score", nargs="+", default=None, metavar="ITEM", help="score these items instead of sampling")
    p.add_argument("--score_file", default=None, help="score the items of this file (one per line)")
    wanted.add_arguments(p)  # constraints, --best, --sort
    return p


def check(args: argparse.Namespace) -> None:
    total = args.num_samples * len(args.prefix or [""])
    if args.num_samples <= 0:
        raise MakemoreError(f"--num_samples must be at least 1, got {args.num_samples}")
    if total > MAX_SAMPLES:
        raise MakemoreError(
            f"--num_samples {args.num_samples} asks for {total:,} items, more than the {MAX_SAMPLES:,} of one call; "
            "run several calls with different --seed values"
        )
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise MakemoreError(f"--temperature must be >= 0 and finite (0 is greedy), got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise MakemoreError(f"--top_k must be at least 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:  # NaN fails this too
        raise MakemoreError(f"--top_p must be in (0, 1], got {args.top_p}")
    if args.max_length is not None and not 1 <= args.max_length <= MAX_LENGTH:
        raise MakemoreError(f"--max_length must be between 1 and {MAX_LENGTH:,}, got {args.max_length}")
    if args.seed is not None and not 0 <= args.seed < 2**64:
        raise MakemoreError(f"--seed must be in [0, 2**64), got {args.seed}")
    for flag in ("ckpt_path", "checkpoint_root", "output", "score_file"):
        if getattr(args, flag) == "":
            raise MakemoreError(f"--{flag} is empty; name a file or leave the option out")
    if args.ckpt_path is not None:
        check_regular(args.ckpt_path, "--ckpt_path")


def check_regular(path: str, flag: str) -> None:
    """An existing path that is a directory, FIFO, device or link loop is named for what it is."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # said by whoever reads it
    except OSError as err:
        raise MakemoreError(f"{flag} {path} {stat_problem(err)}; name a file") from None
    if not stat.S_ISREG(mode):
        raise MakemoreError(f"{flag} {path} is {file_kind(mode)}, not a regular file; name a file")


def check_output(args: argparse.Namespace) -> None:
    """Before any sampling: the output file may be written, and replaces nothing unasked."""
    if args.output is None:
        return
    path = Path(args.output)
    try:
        mode = os.lstat(path).st_mode  # the name itself: a link, even a dangling one, exists
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise MakemoreError(f"--output {path} {stat_problem(err)}; name a file in an existing folder") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise MakemoreError(f"--output {path} is a directory; name a file")
    if mode is not None and not args.overwrite:
        raise MakemoreError(f"--output {path} exists; pass --overwrite to replace it, or name a new file")
    if mode is not None:
        check_regular(path, "--output")  # what --overwrite would write through a link to
        path = Path(os.path.realpath(path))
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


def labeller(data: dict, data_path: str | None = None):
    """``item -> 'in train' | 'in val' | 'in test' | 'new'`` when the training file is there,
    unchanged (a changed file would give wrong labels: then none, and stderr says why)."""
    if "split_seed" not in data:
        return None  # a checkpoint from before data settings were saved
    try:
        path = wanted.training_file(data, data_path, "labelling samples")
    except MakemoreError as err:
        if data_path is not None:  # named by the user: say it is wrong
            raise
        print(f"samples not labelled: {err}", file=sys.stderr)
        return None
    parts = split_items(read_items(path), data["split_seed"], data["train_fraction"], data["val_fraction"])
    sets = dict(zip(("train", "val", "test"), map(set, parts)))
    return lambda item: next((f"in {name}" for name, items in sets.items() if item in items), "new")


def score_items(loaded, items: list[str], sort: str = "total") -> None:
    """Print each scorable item's score; list the others and end with one error line for them."""
    longest = loaded.block_size - 1  # a sequence net sees the boundary token and this many characters
    window = loaded.net.examples == "windows"
    good, bad = [], []
    for item in items:
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
    except KeyboardInterrupt:
        print("error: interrupted; --output, if given, was not written", file=sys.stderr)
        raise SystemExit(130) from None
    except BrokenPipeError:
        # The reader of stdout left (`| head`): stop quietly, as other tools do (--output unwritten).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        raise SystemExit(1) from None


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
        items = [item_of(item) for item in args.score or []]  # as a file's lines are read
        items += read_items(args.score_file, "--score_file") if args.score_file else []
        score_items(loaded, items, args.sort)
        return
    # A sequence net sees block_size positions: the boundary token and block_size - 1 characters.
    limit = 30 if window else loaded.block_size - 1
    max_length = args.max_length or limit
    if max_length > limit and not window:
        raise MakemoreError(f"--max_length {max_length} is more than this model's {limit} characters (block_size)")
    for prefix in args.prefix or [""]:
        check_chars(prefix, "prefix", vocab)
        if len(prefix) > max_length:
            raise MakemoreError(f"prefix {prefix!r} is longer than --max_length {max_length}")
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    constraints = wanted.from_args(args, vocab, loaded.data, max_length)
    if args.best is not None:
        return print_best(loaded, constraints, args, max_length)

    def chunks() -> Iterator[list[str]]:
        if constraints.asked:  # drawn until enough satisfy them (makemore.inference.constrained)
            yield sample_all(loaded, constraints, args, max_length, generator)
            return
        for prefix in args.prefix or [""]:
            for start in range(0, args.num_samples, CHUNK):
                n = min(CHUNK, args.num_samples - start)
                yield sample(net, vocab, n, prefix, max_length, args.temperature, args.top_k, args.top_p, generator)

    label = labeller(loaded.data, args.data_path)
    counts = {"items": 0, "new": 0}

    def emit(file=None) -> None:
        """Print the items as they are sampled (and write them to ``file``)."""
        for items in chunks():
            labels = [label(item) for item in items] if label else [None] * len(items)
            print("".join(f"{item}\t{tag}\n" if tag else f"{item}\n" for item, tag in zip(items, labels)), end="")
            if file is not None:
                file.write("".join(item + "\n" for item in items).encode("utf-8"))
            counts["items"] += len(items)
            counts["new"] += labels.count("new")

    if args.output is None:
        emit()
    else:
        write_output(args, emit)
    if label:
        new, total = counts["new"], counts["items"]
        print(f"{new} of {total} samples are new ({100 * new / total:.0f}%)", file=sys.stderr)
    if args.output:
        print(f"wrote {counts['items']} items to {args.output}", file=sys.stderr)


def write_output(args: argparse.Namespace, write) -> None:
    """``write(file)`` into ``--output`` whole or not at all: a new file, created only if the name
    is still free when it is complete; with ``--overwrite``, replacing the file (through a link
    to its target)."""
    try:
        if args.overwrite:
            write_atomically(os.path.realpath(args.output), write)
        else:
            write_new(args.output, write)
    except BrokenPipeError:
        raise  # stdout's, not the file's
    except FileExistsError:
        raise MakemoreError(
            f"--output {args.output} appeared while sampling and was kept; nothing written. "
            "Pass --overwrite to replace it, or name a new file"
        ) from None
    except OSError as err:
        raise MakemoreError(f"--output {args.output} could not be written ({err.strerror}); nothing written") from None


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
