"""Files (checkpoints, samples) written whole or not at all.

The bytes go to a temporary file beside the target, are flushed to disk, and only then renamed
over it (a rename within one folder is atomic), and the folder is flushed too: at every instant
the name holds a complete file, even after a power cut. Lightning's own local save (an fsspec
transaction) also writes aside and moves, but flushes neither the file nor the folder, so after
a crash of the machine the new name can point at an empty file; this module is kept for those
two fsyncs (``makemore.training.checkpoint.AtomicCheckpointIO``). Remote URLs still take
Lightning's path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Run ``write(file)`` on a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: a crash at any point leaves the old file at ``path`` (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # only left if something above failed
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself reaches the disk
    finally:
        os.close(folder)


def save_atomically(obj, path: str | Path) -> None:
    """``torch.save(obj, path)``, but a crash at any point leaves the old file at ``path``."""
    write_atomically(path, lambda f: torch.save(obj, f))
