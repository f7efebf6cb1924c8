"""Training through ``python -m makemore fit`` against a plain PyTorch loop, side by side.

    python benchmarks/fit_vs_plain.py configs/v5.yaml --data ../shared/data/names.txt --steps 3000 --rounds 5
    python benchmarks/fit_vs_plain.py configs/{mlp,rnn,lstm,gru,transformer}.yaml --steps 500 --rounds 3
    python benchmarks/fit_vs_plain.py configs/rnn.yaml --net-args '--model.net.init_args.n_hidden 64'

Both train the same hand-built net (built from the config, same seed) on the same examples with
the same batch size, optimizer and schedule. The plain loop is what one writes without
Lightning: sample a batch with ``torch.randint``, forward, set every ``p.grad = None``,
backward, update, record ``loss.log10().item()``. For the lecture's SGD configs (V1-V5, mlp) the
update is the lecture's own ``p.data += -lr * p.grad``; otherwise ``optimizer.step()`` and
``scheduler.step()``. Each batch is prepared as ``CharLM.training_step`` prepares it: a sequence
net's items packed into rows where ``CharLM.packs_batches`` (the family's default, ``--model.pack``),
else the padding no item in the batch reaches skipped; a compiled loss keeps the padded shape.
``fit`` runs with its defaults (TensorBoard logging, checkpoints, progress bar). Only training
steps are timed (start-up and validation are not). The two alternate in fresh processes,
``--rounds`` times each, the order swapped every round; the table gives the median steps per
second of each and the median over rounds of the ratio fit / plain within a round (>= 1: fit is
no slower), by wall-clock time and by the process's CPU time. Pairing by round cancels most of a
shared machine's drift; CPU time also leaves out the time another process held the core. (The
bigram is fitted by counting: no steps to time.)
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


def plain(config: str, data: str | None, steps: int, extra: str = "") -> dict:
    import torch

    from makemore.cli import run
    from makemore.data.packing import pack, trim
    from makemore.training.compiling import compiled_loss
    from makemore.training.optim import SGD, MilestoneDecay

    cli = run(["--config", config, *(["--data.path", data] if data else []), *shlex.split(extra)], subcommand=False)
    net, dm = cli.model.net, cli.datamodule  # the config's hand-built net, seeded by its seed_everything
    xtr, ytr = dm.tensors("train")
    setup = cli.model.configure_optimizers()
    optimizer = setup["optimizer"] if isinstance(setup, dict) else setup
    scheduler = setup["lr_scheduler"]["scheduler"] if isinstance(setup, dict) else None
    lecture = isinstance(optimizer, SGD) and (scheduler is None or isinstance(scheduler, MilestoneDecay))
    base_lr = optimizer.param_groups[0]["lr"]
    parameters = list(net.parameters())
    model = cli.model
    loss_fn = compiled_loss(net, model.compile_mode) if model.compiled else net.loss  # as fit's on_fit_start
    lossi = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(steps):
        ix = torch.randint(0, xtr.shape[0], (dm.batch_size,))
        x, y = xtr[ix], ytr[ix]
        positions = None
        if model.packs_batches:  # what CharLM.training_step does to a batch
            x, y, positions = pack(x, y, net.pack_rows)
        elif not model.compiled:
            x, y = trim(x, y)
        loss = loss_fn(x, y, "mean", positions)
        for p in parameters:
            p.grad = None
        loss.backward()
        if lecture:
            lr = base_lr * (scheduler.gamma ** sum(i >= m for m in scheduler.milestones) if scheduler else 1)
            for p in parameters:
                p.data += -lr * p.grad
        else:
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        lossi.append(loss.log10().item())
    return {"steps": steps, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}


def fit(config: str, data: str | None, steps: int, extra: str = "") -> None:
    sys.path.insert(0, str(HERE))  # for timing.StepTimer
    from makemore.cli import run

    with tempfile.TemporaryDirectory() as root:
        args = ["fit", "--config", config, "--checkpoint_root", root, "--trainer.max_steps", str(steps)]
        args += ["--data.batches_per_epoch", str(steps), "--trainer.callbacks+=timing.StepTimer", *shlex.split(extra)]
        run(args + (["--data.path", data] if data else []))


def child(kind: str, config: str, args: argparse.Namespace) -> tuple[float, float]:
    """Steps per second of wall-clock time and of the process's CPU time."""
    cmd = [sys.executable, __file__, config, "--child", kind, "--steps", str(args.steps)]
    cmd += ["--data", args.data] if args.data else []
    cmd += ["--fit-args", args.fit_args] if args.fit_args else []
    cmd += ["--net-args", args.net_args] if args.net_args else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ)
    if out.returncode != 0:
        raise SystemExit(f"{kind} {config} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    row = json.loads(lines[-1])
    return row["steps"] / row["seconds"], row["steps"] / row["cpu_seconds"]


def compare(config: str, args: argparse.Namespace) -> dict:
    rates, cpu_rates = {"plain": [], "fit": []}, {"plain": [], "fit": []}
    for round_ in range(args.rounds):
        # Each round's first run goes second in the next, so a drift of the machine favours neither.
        for kind in ["plain", "fit"] if round_ % 2 == 0 else ["fit", "plain"]:
            wall, cpu = child(kind, config, args)
            rates[kind].append(wall)
            cpu_rates[kind].append(cpu)
    paired = statistics.median(f / p for f, p in zip(rates["fit"], rates["plain"]))
    paired_cpu = statistics.median(f / p for f, p in zip(cpu_rates["fit"], cpu_rates["plain"]))
    return {
        "config": Path(config).stem,
        "steps": args.steps,
        "rates": rates,
        "cpu_rates": cpu_rates,
        "paired_ratio": paired,
        "paired_cpu_ratio": paired_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=["configs/v5.yaml"])
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--steps", type=int, default=3000, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--fit-args", default="", help="extra arguments for fit alone, e.g. '--trainer.logger false'")
    parser.add_argument("--net-args", default="", help="config arguments for both, e.g. '--data.batch_size 64'")
    parser.add_argument("--child", choices=["plain", "fit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config = args.configs[0]
        sys.argv = sys.argv[:1]
        if args.child == "plain":
            print(json.dumps(plain(config, args.data, args.steps, args.net_args)))
        else:
            fit(config, args.data, args.steps, f"{args.net_args} {args.fit_args}")
        return
    results = [compare(config, args) for config in args.configs]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    print("| config | plain steps/s | fit steps/s | fit / plain (median of rounds) | by CPU | rounds (plain; fit) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        plain_rate, fit_rate = (statistics.median(r["rates"][k]) for k in ("plain", "fit"))
        rounds = "; ".join(", ".join(f"{v:.0f}" for v in r["rates"][k]) for k in ("plain", "fit"))
        ratios = f"{r['paired_ratio']:.2f} | {r['paired_cpu_ratio']:.2f}"
        print(f"| {r['config']} | {plain_rate:.0f} | {fit_rate:.0f} | {ratios} | {rounds} |")


if __name__ == "__main__":
    main()
