"""Items from a text file, and the split of them into training, validation and test items."""

from __future__ import annotations

import random
from pathlib import Path

from makemore.errors import MakemoreError

BUNDLED_DATASET = Path(__file__).parent.parent / "assets" / "names_2015.txt"


def read_items(path: str | Path, flag: str = "--data.path") -> list[str]:
    """One item per line: surrounding whitespace stripped, blank lines dropped, a UTF-8 byte-order
    mark ignored. ``flag`` is the option that named the file, for the error messages."""
    path = Path(path)
    if not path.exists():
        raise MakemoreError(f"{flag} {path} does not exist; pass an existing file")
    if not path.is_file():
        raise MakemoreError(f"{flag} {path} is a directory, not a file; pass a text file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not a character
    except UnicodeDecodeError as err:
        raise MakemoreError(f"{flag} {path} is not UTF-8 text (byte {err.start}); re-encode it as UTF-8") from None
    except OSError as err:
        raise MakemoreError(f"{flag} {path} cannot be read ({err.strerror}); pass a readable file") from None
    items = [line.strip() for line in text.splitlines()]
    items = [item for item in items if item]
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
