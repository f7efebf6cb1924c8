"""DDP with 2 CPU processes (batch B each) against 1 process (batch 2B), side by side.

For each config: both runs train the same steps from the same seed; the script prints the
largest weight difference, the final val_loss of each, and steps per second of each (wall time
of the whole command, start-up included), then a markdown table.

    python benchmarks/ddp_vs_single.py configs/v5.yaml configs/transformer.yaml \\
        --data ../shared/data/names.txt --steps 2000 --extra "--model.net.init_args.dropout 0"

Dropout draws different masks on each rank, so pass ``--extra`` to turn it off when the weights
are to agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def fit(config: str, args: argparse.Namespace, root: str, processes: int, extra: list[str]) -> tuple[Path, float]:
    """The run's directory and the command's wall time."""
    cmd = [sys.executable, "-m", "makemore", "fit", "--config", config, "--checkpoint_root", root]
    cmd += ["--trainer.max_steps", str(args.steps), "--trainer.accelerator", "cpu"]
    cmd += ["--data.batches_per_epoch", str(args.steps)]  # one validation, at the end
    cmd += ["--trainer.enable_progress_bar", "false", "--samples.every_n_steps", "0"]
    cmd += ["--data.batch_size", str(args.batch * (2 // processes))]
    cmd += ["--data.path", args.data] if args.data else []
    if processes > 1:
        cmd += ["--trainer.strategy", "ddp", "--trainer.devices", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    out = subprocess.run([*cmd, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{config} with {processes} process(es) failed:\n{out.stderr[-3000:]}")
    (run_dir,) = Path(root).iterdir()
    return run_dir, wall


def compare(config: str, args: argparse.Namespace) -> dict:
    extra = shlex.split(args.extra)
    with tempfile.TemporaryDirectory() as one_root, tempfile.TemporaryDirectory() as two_root:
        one, one_wall = fit(config, args, one_root, 1, extra)
        two, two_wall = fit(config, args, two_root, 2, extra)
        a, b = (torch.load(run / "last.ckpt", weights_only=True) for run in (one, two))
        # One validation, the last, so one best checkpoint (last.ckpt is written at the validation's
        # end, before the best is chosen: its callback state holds no score).
        val = [_score(next(run.glob("best-*.ckpt"))) for run in (one, two)]
    weights = [k for k, v in a["state_dict"].items() if isinstance(v, torch.Tensor)]  # not the average's counter
    diff = max((a["state_dict"][k].float() - b["state_dict"][k].float()).abs().max().item() for k in weights)
    return {
        "config": Path(config).stem,
        "steps": args.steps,
        "max_weight_diff": diff,
        "val_1proc": val[0],
        "val_2proc": val[1],
        "steps_per_s_1proc": args.steps / one_wall,
        "steps_per_s_2proc": args.steps / two_wall,
    }


def _score(path: Path) -> float:
    state = torch.load(path, weights_only=True)["callbacks"]
    return float(next(iter(state.values()))["best_model_score"])


def markdown(rows: list[dict]) -> str:
    lines = [
        "| config | steps | max weight diff | val 1 proc | val 2 proc | steps/s 1 proc | steps/s 2 proc | 2/1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["steps_per_s_2proc"] / r["steps_per_s_1proc"]
        cells = [r["config"], f"{r['steps']:,}", f"{r['max_weight_diff']:.1e}", f"{r['val_1proc']:.4f}"]
        cells += [f"{r['val_2proc']:.4f}", f"{r['steps_per_s_1proc']:.0f}", f"{r['steps_per_s_2proc']:.0f}"]
        lines.append("| " + " | ".join([*cells, f"{ratio:.2f}"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each run")
    parser.add_argument("--batch", type=int, default=16, help="per-process batch of the 2-process run")
    parser.add_argument("--extra", default="", help="more fit arguments for both runs, in one string")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = [compare(config, args) for config in args.configs]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
