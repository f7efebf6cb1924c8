"""Shared fixtures: a tiny word file and tiny, fast trainer settings (cpu, few steps)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


# The suite runs in two processes (pytest-xdist, pyproject's addopts) on a 2-core machine: one
# thread each, as two-thread torch next to a busy core runs many times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def write_words(path: Path) -> Path:
    """200 made-up items over a small alphabet, with a '.' to prove it is an ordinary character."""
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdef.") for _ in range(rng.randint(2, 9))) for _ in range(200)]
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def words_file(tmp_path: Path) -> Path:
    return write_words(tmp_path / "words.txt")


def tiny_fit_args(data: Path, root: Path, config: str = "configs/v4.yaml", steps: int = 40) -> list[str]:
    """``fit`` on a tiny file for a few dozen steps, checkpoints and logs under ``root``."""
    return [
        "fit",
        "--config",
        str(ROOT / config),
        "--data.path",
        str(data),
        "--data.batches_per_epoch",
        "20",
        "--data.eval_tokens",
        "64",
        "--trainer.max_steps",
        str(steps),
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--checkpoint_root",
        str(root),
        "--samples.every_n_steps",
        "0",
    ]


def curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a scalar in a run's TensorBoard events, in the order written."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def fails(args: list[str], capsys) -> str:
    """Run the CLI in-process on ``args``, which must fail cleanly; its last stderr line."""
    from makemore.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and "Traceback" not in err
    return err.strip().splitlines()[-1]
