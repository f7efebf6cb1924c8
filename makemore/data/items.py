"""Items from a text file, and the split of them into training, validation and test items."""

from __future__ import annotations

import errno
import os
import random
import stat
from pathlib import Path

from makemore.errors import MakemoreError

BUNDLED_DATASET = Path(__file__).parent.parent / "assets" / "names_2015.txt"


def item_of(line: str) -> str:
    """A line (or one item given on the command line) as an item: the ``\\r`` of a CRLF line end
    and surrounding spaces and tabs removed. Nothing else is stripped or split at: U+2028, U+0085,
    form feeds and the like stay in their item."""
    return line.removesuffix("\r").strip(" \t")


def items_of(text: str) -> list[str]:
    """The items of a text: its lines, split at ``\\n`` alone, blank ones dropped."""
    return [item for line in text.split("\n") if (item := item_of(line))]


def file_kind(mode: int) -> str:
    """What a ``stat`` mode is, in words, for error messages."""
    kinds = [
        (stat.S_ISREG, "a file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "an unusual file")


def stat_problem(err: OSError) -> str:
    """Why ``os.stat`` of a path failed, in words."""
    if err.errno == errno.ENOENT:
        return "does not exist"
    if err.errno == errno.ELOOP:
        return "is a symbolic link loop"
    if err.errno == errno.ENOTDIR:
        return "does not exist (a part of its path is a file, not a folder)"
    return f"cannot be read ({err.strerror})"


def read_items(path: str | Path, flag: str = "--data.path") -> list[str]:
    """One item per line (``items_of``), a UTF-8 byte-order mark ignored. ``flag`` is the option
    that named the file, for the error messages."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # before opening: a FIFO or a device could block or never end
    except OSError as err:
        raise MakemoreError(f"{flag} {path} {stat_problem(err)}; pass an existing text file") from None
    if not stat.S_ISREG(mode):
        raise MakemoreError(f"{flag} {path} is {file_kind(mode)}, not a regular file; pass a text file")
    try:
        # -sig: a byte-order mark is not a character; newline="": a lone "\r" is no line end
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise MakemoreError(f"{flag} {path} is not UTF-8 text (byte {err.start}); re-encode it as UTF-8") from None
    except OSError as err:
        raise MakemoreError(f"{flag} {path} cannot be read ({err.strerror}); pass a readable file") from None
    items = items_of(text)
    if not items:
        raise MakemoreError(f"{flag} {path} has no items; put one item per line")
    return items


def split_items(items: list[str], seed: int, train_fraction: float, val_fraction: float) -> tuple[list[str], ...]:
    """Shuffle with ``random.Random(seed)`` and cut, as the lecture's ``random.seed(42); random.shuffle``."""
    items = list(items)
    random.Random(seed).shuffle(items)
    n1 = int(round(train_fraction, 12) * len(items))
    n2 = int(round(train_fraction + val_fraction, 12) * len(items))
    return items[:n1], items[n1:n2], items[n2:]
