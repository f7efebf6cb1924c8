"""Run directories: every fit gets a fresh ``checkpoints/<name>-<n>/``; ``last`` finds the newest.

``pretrained-<name>/`` is a run shipped with the project: evaluation falls back to it when no run
of that name was trained here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from makemore.errors import MakemoreError


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
    ``last``, the ``last.ckpt``) of the newest run called ``name`` that has one; failing that, of
    the shipped ``pretrained-<name>``."""
    runs = [path for _, path in reversed(_numbered(Path(root), name))] + [Path(root) / f"pretrained-{name}"]
    for run in runs:
        found = last_of(run) if last else best_checkpoint(run)
        if found is not None:
            return found
    which = "last.ckpt" if last else "checkpoint"
    raise MakemoreError(
        f"no run named {name!r} with a {which} under {root}/ to evaluate; train one with fit, "
        "or pass --ckpt_path PATH (or the --run_name of an earlier run)"
    )


def last_checkpoint(root: str | Path, name: str) -> Path:
    """``last.ckpt`` of the newest run called ``name`` that has one."""
    for _, path in reversed(_numbered(Path(root), name)):
        if last_of(path) is not None:
            return last_of(path)
    raise MakemoreError(
        f"no run named {name!r} with a last.ckpt under {root}/ to resume; "
        "pass --ckpt_path PATH or the --run_name of an earlier run"
    )
