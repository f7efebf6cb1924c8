"""Run directories: every fit gets a fresh ``checkpoints/<name>-<n>/``; ``last`` finds the newest.

A model shipped inside the package (``makemore/assets/pretrained/<name>/``) is evaluated when no
run of that name was trained here. A fit holds a lock on its run directory while it writes there
(``RunLock``), so two processes never write into one run.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from makemore.errors import MakemoreError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not guarded against each other there
    fcntl = None


def _numbered(root: Path, name: str) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(name) + r"-(\d+)")
    found = [(int(m.group(1)), p) for p in root.glob(f"{name}-*") if (m := pattern.fullmatch(p.name)) and p.is_dir()]
    return sorted(found)


def next_run_dir(root: str | Path, name: str) -> Path:
    """``root/name-<n>`` with ``n`` one past the highest existing run of that name."""
    runs = _numbered(Path(root), name)
    return Path(root) / f"{name}-{runs[-1][0] + 1 if runs else 1}"


BEST = re.compile(r"best-step=\d+-val_loss=(\d+(?:\.\d+)?)\.ckpt")


def claim_run_dir(path: Path) -> None:
    """Create the run directory; fail if another run took it meanwhile (never share one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()  # atomic: of two runs started at once, one gets it
    except FileExistsError:
        raise MakemoreError(f"run directory {path} was just taken by another run; start this run again") from None
    except OSError as err:
        raise MakemoreError(
            f"cannot create the run directory {path}: {err.strerror}; pass a writable --checkpoint_root"
        ) from None


def check_writable(folder: Path) -> None:
    """Refuse a folder this process cannot write a file into (checked by writing one: permission
    bits say nothing to root, nor about a read-only disk)."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise MakemoreError(f"cannot write into {folder}: {err.strerror}; pass a writable folder") from None


def last_of(run: Path) -> Path | None:
    """The run's ``last.ckpt``, or None."""
    return run / "last.ckpt" if (run / "last.ckpt").is_file() else None


def best_checkpoint(run: Path) -> Path | None:
    """The run's checkpoint with the lowest val_loss in its name, else its ``last.ckpt``, else None."""
    best = [(float(m.group(1)), f) for f in run.glob("best-*.ckpt") if (m := BEST.fullmatch(f.name))]
    return min(best)[1] if best else last_of(run)


def evaluation_checkpoint(root: str | Path, name: str, last: bool = False) -> Path:
    """What ``validate``/``test`` evaluate when given no checkpoint: the best checkpoint (or with
    ``last``, the ``last.ckpt``) of the newest run called ``name`` that has one and that no fit
    is writing now; failing that, of the model of that name shipped inside the package
    (``makemore/assets/pretrained/<name>/``)."""
    from makemore.assets import PRETRAINED

    runs = [path for _, path in reversed(_numbered(Path(root), name))] + [PRETRAINED / name]
    for run in runs:
        found = last_of(run) if last else best_checkpoint(run)
        if found is not None and not skip_if_being_written(run):
            return found
    which = "last.ckpt" if last else "checkpoint"
    raise MakemoreError(
        f"no run named {name!r} with a {which} under {root}/ to evaluate; train one with fit, "
        "or pass --ckpt_path PATH (or the --run_name of an earlier run)"
    )


def last_checkpoint(root: str | Path, name: str) -> Path:
    """``last.ckpt`` of the newest run called ``name``. If that run has none (it stopped before
    its first checkpoint), one line: continuing an older run instead would write into it."""
    runs = _numbered(Path(root), name)
    if not runs:
        raise MakemoreError(
            f"no run named {name!r} under {root}/ to resume; pass --ckpt_path PATH or the --run_name of an earlier run"
        )
    newest = runs[-1][1]
    if last_of(newest) is None:
        older = next((last_of(path) for _, path in reversed(runs[:-1]) if last_of(path)), None)
        hint = f", or --ckpt_path {older} to start a new run from that one" if older else ""
        raise MakemoreError(
            f"the newest run {newest} has no last.ckpt (it stopped before its first checkpoint), so there is "
            f"nothing to resume; start afresh without --ckpt_path{hint}"
        )
    return last_of(newest)


def is_being_written(run_dir: Path) -> bool:
    """Whether a fit holds ``run_dir``'s lock now (``RunLock``): a shared lock, tried without
    waiting on a descriptor of our own, is refused while it does (closing ours releases it)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return False  # gone or unreadable: nothing there is being written by a fit we could see
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def skip_if_being_written(run: Path) -> bool:
    """True, and a line on stderr, when a fit is writing ``run`` now: its checkpoints are moving."""
    if not is_being_written(run):
        return False
    print(f"skipping {run}: a fit is writing it right now", file=sys.stderr)
    return True


class RunLock:
    """An exclusive lock on a run directory while a fit writes in it. The operating system
    releases it when the process ends, ``kill -9`` included, so a stale lock cannot exist."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.run_dir, os.O_RDONLY)  # the directory itself: no lock file to leave behind
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise MakemoreError(
                f"run {self.run_dir} is being written by another fit right now; wait for it to end, or start "
                "a new run (fit without --ckpt_path)"
            ) from None
        self._fd = fd
        # A checkpoint write that was killed leaves its temporary file; no other writer is here now.
        for partial in self.run_dir.glob(".*.partial"):
            partial.unlink(missing_ok=True)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __del__(self):
        self.release()
