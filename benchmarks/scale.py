"""How the cost of ``fit`` grows with the data: files of 0.1M, 1M and 10M lines, V5 and the Transformer.

    python benchmarks/scale.py --lines 100000 1000000 10000000 --json benchmarks/results/scale.json

The files are made deterministically from the bundled names (each line two random names joined,
about 14 characters; never committed: they go to ``--folder``). Each run is ``python -m makemore
fit`` in its own process, one thread, ``--steps`` steps with ``--trainer.limit_val_batches 2``;
it reports the process's peak memory, the time from its start to the first training step, the
training steps per second (first step left out) and the time of one validation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parent.parent


class Timer(L.Callback):
    """Notes when training starts, each step ends and each validation takes (the child's)."""

    def __init__(self):
        self.first_step = None
        self.steps: list[tuple[float, int]] = []
        self.validations: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_step is None:
            self.first_step = time.time()  # the parent subtracts when it started this process

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append((time.perf_counter(), trainer.global_step))

    def on_validation_start(self, trainer, pl_module):
        self._validation = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validations.append(time.perf_counter() - self._validation)

    def on_fit_end(self, trainer, pl_module):
        (t0, s0), (t1, s1) = self.steps[0], self.steps[-1]
        row = {
            "peak_memory_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "first_step_s": self.first_step,
            "steps_per_s": (s1 - s0) / (t1 - t0) if t1 > t0 else None,
            "validation_s": self.validations[0] if self.validations else None,
        }
        print("SCALE " + json.dumps(row), flush=True)


def make_file(lines: int, folder: Path) -> Path:
    path = folder / f"pairs-{lines}.txt"
    if not path.exists():
        names = (ROOT / "makemore/assets/names_2015.txt").read_text().split()
        rng = random.Random(lines)
        with open(path, "w") as f:
            for start in range(0, lines, 1_000_000):
                f.write(
                    "".join(rng.choice(names) + rng.choice(names) + "\n" for _ in range(min(1_000_000, lines - start)))
                )
    return path


def measure(config: str, data: Path, steps: int, folder: Path) -> dict:
    args = [
        sys.executable,
        __file__,
        "--child",
        config,
        "--data",
        str(data),
        "--steps",
        str(steps),
        "--folder",
        str(folder),
    ]
    started = time.time()
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [line for line in out.stdout.splitlines() if line.startswith("SCALE ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{config} on {data} failed:\n{out.stderr[-2000:]}")
    row = json.loads(lines[-1][len("SCALE ") :])
    return row | {"first_step_s": row["first_step_s"] - started}  # imports and data included


def child(args) -> None:
    from makemore.cli import main

    with tempfile.TemporaryDirectory() as root:
        main([
            "fit", "--config", str(ROOT / "configs" / f"{args.child}.yaml"), "--data.path", args.data,
            "--trainer.max_steps", str(args.steps), "--trainer.limit_val_batches", "2",
            "--trainer.enable_progress_bar", "false", "--samples.every_n_steps", "0", "--checkpoint_root", root,
            "--trainer.callbacks+=__main__.Timer",
        ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--configs", nargs="+", default=["v5", "transformer"])
    parser.add_argument("--steps", type=int, default=400, help="training steps per run")
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "makemore-scale"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for lines in args.lines:
        data = make_file(lines, folder)
        for config in args.configs:
            row = {"lines": lines, "file_mb": data.stat().st_size / 1e6, "config": config}
            rows.append(row | measure(config, data, args.steps, folder))
            print(rows[-1], file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print("| lines | file (MB) | config | peak memory (GB) | to first step (s) | steps/s | one validation (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['lines']:,}", f"{r['file_mb']:.0f}", r["config"], f"{r['peak_memory_gb']:.2f}"]
        cells += [f"{r['first_step_s']:.1f}", f"{r['steps_per_s']:.0f}", f"{r['validation_s']:.2f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
