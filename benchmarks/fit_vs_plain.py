"""V5 through ``python -m makemore fit`` against the lecture's plain PyTorch loop, side by side.

    python benchmarks/fit_vs_plain.py --data ../shared/data/names.txt --steps 5000 --rounds 5

Both train the same WaveNet (V5: configs/v5.yaml) on the same windows, batch 32, lr 0.1 with the
decay at 150k, from the same seed. The plain loop is the lecture's: sample a batch with
``torch.randint``, forward, set every ``p.grad = None``, backward, ``p.data += -lr * p.grad``,
record ``loss.log10().item()``. ``fit`` runs with its defaults (TensorBoard logging,
checkpoints, progress bar). Only training steps are timed (start-up and validation are not).
The two alternate in fresh processes, ``--rounds`` times each; the table gives the median
steps per second of each, and the median over rounds of the ratio fit / plain within a round
(>= 1 means fit is no slower). Pairing by round cancels most of a shared machine's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def plain(data: str | None, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    from makemore.cli import run

    cli = run(["--config", str(ROOT / "configs/v5.yaml"), *(["--data.path", data] if data else [])], subcommand=False)
    net = cli.model.net  # the same hand-built V5, seeded by the config's seed_everything
    xtr, ytr = cli.datamodule.tensors("train")
    parameters = list(net.parameters())
    lossi = []
    start = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, xtr.shape[0], (32,))
        logits = net(xtr[ix])
        loss = F.cross_entropy(logits, ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 150_000 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        lossi.append(loss.log10().item())
    return {"steps": steps, "seconds": time.perf_counter() - start}


def fit(data: str | None, steps: int, extra: str = "") -> None:
    sys.path.insert(0, str(HERE))  # for timing.StepTimer
    from makemore.cli import run

    with tempfile.TemporaryDirectory() as root:
        args = [
            "fit",
            "--config",
            str(ROOT / "configs/v5.yaml"),
            "--checkpoint_root",
            root,
            "--trainer.max_steps",
            str(steps),
            "--data.batches_per_epoch",
            str(steps),
            "--trainer.callbacks+=timing.StepTimer",
            *shlex.split(extra),
        ]
        run(args + (["--data.path", data] if data else []))


def child(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--steps", str(args.steps)]
    cmd += ["--data", args.data] if args.data else []
    cmd += ["--fit-args", args.fit_args] if args.fit_args else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    row = json.loads(lines[-1])
    return row["steps"] / row["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--steps", type=int, default=5000, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--fit-args", default="", help="extra arguments for fit, e.g. '--data.fused_steps 1'")
    parser.add_argument("--child", choices=["plain", "fit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.argv = sys.argv[:1]
        result = plain(args.data, args.steps) if args.child == "plain" else fit(args.data, args.steps, args.fit_args)
        if result:
            print(json.dumps(result))
        return
    rates = {"plain": [], "fit": []}
    for _ in range(args.rounds):
        for kind in rates:
            rates[kind].append(child(kind, args))
    plain_rate, fit_rate = statistics.median(rates["plain"]), statistics.median(rates["fit"])
    paired = statistics.median(f / p for f, p in zip(rates["fit"], rates["plain"]))
    result = {"steps": args.steps, "rounds": args.rounds, "rates": rates, "paired_ratio": paired}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    print("| loop | steps/s (median) | each round |\n|---|---|---|")
    for kind, rate in (("plain PyTorch (lecture)", plain_rate), ("python -m makemore fit", fit_rate)):
        key = "plain" if kind.startswith("plain") else "fit"
        print(f"| {kind} | {rate:.0f} | {', '.join(f'{r:.0f}' for r in rates[key])} |")
    print(f"| ratio fit / plain (median of rounds) | {paired:.2f} | |")


if __name__ == "__main__":
    main()
