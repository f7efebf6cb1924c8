"""Files (checkpoints, samples) written whole or not at all.

The bytes go to a temporary file beside the target, are flushed to disk, and only then renamed
over it (a rename within one folder is atomic), and the folder is flushed too: at every instant
the name holds a complete file, even after a power cut. Lightning's own local save (an fsspec
transaction) also writes aside and moves, but flushes neither the file nor the folder, so after
a crash of the machine the new name can point at an empty file; this module is kept for those
two fsyncs (``makemore.training.checkpoint.AtomicCheckpointIO``). Remote URLs still take
Lightning's path. ``write_new`` publishes a new file the same way but never replaces one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def _write_aside(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write(file)`` into a new temporary file beside ``path``, flushed to disk; its name."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # the new name itself reaches the disk
    finally:
        os.close(fd)


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Run ``write(file)`` on a temporary file beside ``path``, flush it to disk, then rename it
    over ``path``: a crash at any point leaves the old file at ``path`` (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _write_aside(path, write)
    try:
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # only left if the rename failed
    _sync_folder(path.parent)


def write_new(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Like ``write_atomically``, but ``path`` must not exist when the file is published: a file
    (or link, even a dangling one) that appeared there meanwhile is kept and ``FileExistsError``
    raised. Of several processes racing for one name, exactly one wins."""
    path = Path(path)
    partial = _write_aside(path, write)
    try:
        try:
            os.link(partial, path)  # atomic, and fails if the name exists
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: create the name exclusively, then copy
            _copy_exclusively(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _copy_exclusively(source: Path, path: Path) -> None:
    """Not atomic (a reader may see a partial file), but it still never replaces a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f, open(source, "rb") as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # ours: O_EXCL created it
        raise


def save_atomically(obj, path: str | Path) -> None:
    """``torch.save(obj, path)``, but a crash at any point leaves the old file at ``path``."""
    write_atomically(path, lambda f: torch.save(obj, f))
