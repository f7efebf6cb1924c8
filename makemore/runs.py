"""Run directories: every fit gets a fresh ``checkpoints/<name>-<n>/``; ``last`` finds the newest."""

from __future__ import annotations

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


def claim_run_dir(path: Path) -> None:
    """Create the run directory; fail if another run took it meanwhile (never share one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()  # atomic: of two runs started at once, one gets it
    except FileExistsError:
        raise MakemoreError(f"run directory {path} was just taken by another run; start this run again") from None


def last_checkpoint(root: str | Path, name: str) -> Path:
    """``last.ckpt`` of the newest run called ``name`` that has one."""
    for _, path in reversed(_numbered(Path(root), name)):
        if (path / "last.ckpt").is_file():
            return path / "last.ckpt"
    raise MakemoreError(
        f"no run named {name!r} with a last.ckpt under {root}/ to resume; "
        "pass --ckpt_path PATH or the --run_name of an earlier run"
    )
