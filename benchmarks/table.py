"""Train a list of configs on one file and print the train/val/test table (the README's tables).

    python benchmarks/table.py --data ../shared/data/names.txt --jobs 2 --json benchmarks/results/table.json

Each config runs in its own process through ``makemore.cli.run`` (the same path as
``python -m makemore fit``); train, val and test losses are the exact mean NLL per character over the
whole split, in eval mode, with the final weights. With ``--jobs N`` the machine's cores are
divided between the runs, so wall times are those of runs sharing this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train_one(config: str, data: str | None, steps: int | None, root: str) -> dict:
    """Fit one config in this process and measure it."""
    from makemore.cli import run

    sys.argv = sys.argv[:1]  # the CLI reads its own args, not this script's
    args = ["fit", "--config", config, "--checkpoint_root", root]
    args += ["--trainer.enable_progress_bar", "false", "--run_name", f"table-{Path(config).stem}"]
    if data:
        args += ["--data.path", data]
    if steps:
        args += ["--trainer.max_steps", str(steps)]
    start = time.perf_counter()
    cli = run(args)
    wall = time.perf_counter() - start
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    losses = {
        split: trainer.validate(model, dataloaders=dm.eval_dataloader(split), verbose=False)[0]["val_loss"]
        for split in ("train", "val", "test")
    }
    return {
        "config": Path(config).stem,
        "params": sum(p.numel() for p in model.net.parameters()),  # not the weight average's copy
        "train": losses["train"],
        "val": losses["val"],
        "test": losses["test"],
        "steps": trainer.global_step,
        "wall_s": wall,
        "threads": __import__("torch").get_num_threads(),
    }


def run_child(config: str, args: argparse.Namespace, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", config, "--root", args.root]
    cmd += ["--data", args.data] if args.data else []
    cmd += ["--steps", str(args.steps)] if args.steps else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{config} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict]) -> str:
    lines = ["| config | params | train | val | test | steps | wall time (s) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        losses = [f"{r[split]:.3f}" for split in ("train", "val", "test")]
        cells = [r["config"], f"{r['params']:,}", *losses, f"{r['steps']:,}"]
        lines.append("| " + " | ".join([*cells, f"{r['wall_s']:.0f}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=[f"configs/v{i}.yaml" for i in range(1, 6)])
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--steps", type=int, default=None, help="override max_steps, for shorter runs")
    parser.add_argument("--jobs", type=int, default=1, help="configs trained at once")
    parser.add_argument("--root", default="benchmarks/results/runs", help="where the runs' checkpoints go")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row = train_one(args.child, args.data, args.steps, args.root)
        print(json.dumps(row))
        return
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: run_child(c, args, threads), args.configs))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
