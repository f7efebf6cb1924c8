"""``fit`` on a GPU against plain loops over the same net, eager and compiled, in one run.

    python benchmarks/gpu.py --data path/to/names.txt --json benchmarks/results/gpu.json

For each config, at batch 32 (fp32) and at a large batch (``--large-batch``, bf16-mixed), four
runs in fresh processes, each timed over ``--steps`` optimizer steps after ``--warmup`` untimed
ones (compilation), with the GPU synchronised at both ends:

- ``fit``: ``python -m makemore fit --config ... --trainer.accelerator gpu`` as a user runs it;
- ``fit compiled``: ``--model.compile true``: the loss compiled by ``torch.compile`` in
  ``--compile-mode`` (default: torch.compile's default mode, as ``fit``'s), batches padded;
- ``plain``: a loop with no Lightning: the whole training split on the GPU, batches drawn there
  with ``torch.randint``, forward, ``p.grad = None``, backward, the config's optimizer;
- ``plain compiled``: that loop with the loss compiled as ``fit`` compiles it, same mode.

The table gives ms per optimizer step and target characters per second (a window model predicts
one character per example; a sequence model every character of each item and its end). Needs
only torch, lightning, torchmetrics, tensorboard and jsonargparse besides this project.
``--device cpu`` runs the same code on a CPU (a smoke test of the script, not a GPU figure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
CONFIGS = ["v5", "mlp", "rnn", "lstm", "gru", "bow", "transformer"]
KINDS = ["fit", "fit compiled", "plain", "plain compiled"]
FIT_FLAGS = {"fit": "", "fit compiled": " --model.compile true"}


def plain(config: str, args: argparse.Namespace, batch: int, precision: str, compiled: bool) -> dict:
    import torch

    from makemore.cli import run
    from makemore.training.compiling import compiled_loss

    device = torch.device(args.device)
    cli = run(["--config", config, "--data.path", args.data, "--data.batch_size", str(batch)], subcommand=False)
    model = cli.model.to(device)
    net = model.net
    setup = model.configure_optimizers()
    optimizer = setup["optimizer"] if isinstance(setup, dict) else setup
    scheduler = setup["lr_scheduler"]["scheduler"] if isinstance(setup, dict) else None
    inputs, targets = (t.to(device) for t in cli.datamodule.tensors("train"))
    loss_fn = compiled_loss(net, args.compile_mode) if compiled else net.loss  # fit's compiled loss
    bf16 = precision == "bf16-mixed"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    generator = torch.Generator(device=device).manual_seed(0)
    params = list(net.parameters())
    start = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            _sync(device)
            start = time.perf_counter()
        ix = torch.randint(0, len(inputs), (batch,), device=device, generator=generator)
        with autocast:
            loss = loss_fn(inputs[ix], targets[ix])
        for p in params:
            p.grad = None
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    _sync(device)
    return {"steps": args.steps, "seconds": time.perf_counter() - start}


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chars_per_example(config: str, data: str) -> float:
    """Target characters per training example: 1 for a window, an item's length + 1 for a sequence."""
    from makemore.cli import run

    dm = run(["--config", config, "--data.path", data], subcommand=False).datamodule
    targets = dm.tensors("train")[1]
    return 1.0 if targets.ndim == 1 else float((targets != -1).sum()) / len(targets)


def measure(kind: str, config: str, args, batch: int, precision: str) -> dict:
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]  # keep a path of carried packages
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    if kind.startswith("plain"):
        cmd = [sys.executable, __file__, "--child", kind, "--config", config, "--data", args.data]
        cmd += ["--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup)]
        cmd += ["--batch", str(batch), "--precision", precision]
        cmd += ["--compile-mode", args.compile_mode] if args.compile_mode else []
    else:
        accelerator = "gpu" if args.device == "cuda" else "cpu"
        extra = f"--trainer.accelerator {accelerator} --trainer.precision {precision} --data.batch_size {batch}"
        extra += f" --trainer.callbacks.warmup_steps {args.warmup}" + FIT_FLAGS[kind]
        if kind == "fit compiled" and args.compile_mode:
            extra += f" --model.compile_mode {args.compile_mode}"
        cmd = [sys.executable, str(HERE / "fit_vs_plain.py"), config, "--child", "fit", "--data", args.data]
        cmd += ["--steps", str(args.warmup + args.steps), "--fit-args", extra]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    row = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    return {"ms_per_step": 1000 * row["seconds"] / row["steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="training file, e.g. names.txt")
    parser.add_argument("--configs", nargs="*", default=CONFIGS, help="config names under configs/")
    parser.add_argument("--steps", type=int, default=500, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=100, help="untimed optimizer steps first")
    parser.add_argument("--large-batch", type=int, default=4096, help="the second batch size (bf16-mixed)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--compile-mode", default=None, help="torch.compile's mode (default: its default)")
    parser.add_argument("--kinds", nargs="*", default=KINDS, choices=KINDS, help="which runs (default: all)")
    parser.add_argument(
        "--sizes",
        nargs="*",
        default=["small", "large"],
        choices=["small", "large"],
        help="batch 32 in fp32 (small), --large-batch in bf16-mixed (large), or both",
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file (after every run)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="32-true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data = str(Path(args.data).resolve())
    if args.child:
        sys.argv = sys.argv[:1]
        print(json.dumps(plain(args.config, args, args.batch, args.precision, args.child == "plain compiled")))
        return
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; run on a GPU machine (or --device cpu for a smoke test)")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    rows = []
    result = {"device": device_name, "torch": torch.__version__, "steps": args.steps, "warmup": args.warmup}
    result["compile_mode"] = args.compile_mode  # None: torch.compile's default
    result["rows"] = rows
    sizes = {"small": (32, "32-true"), "large": (args.large_batch, "bf16-mixed")}
    sizes = [sizes[size] for size in args.sizes]
    for name in args.configs:
        config = f"configs/{name}.yaml"
        chars = chars_per_example(config, args.data)
        for batch, precision in sizes:
            row = {"config": name, "batch": batch, "precision": precision, "chars_per_step": chars * batch}
            rows.append(row)
            for kind in args.kinds:
                row[kind] = measure(kind, config, args, batch, precision)
                print(name, batch, precision, kind, row[kind], file=sys.stderr, flush=True)
                if args.json:  # a run cut short still leaves what it measured
                    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"{device_name}, torch {torch.__version__}; ms per optimizer step (million target characters per second)")
    print("| config | batch | precision | " + " | ".join(args.kinds) + " |")
    print("|---|---|---|" + "---|" * len(args.kinds))
    for row in rows:
        cells = []
        for kind in args.kinds:
            ms = row[kind].get("ms_per_step")
            cells.append(f"{ms:.2f} ({row['chars_per_step'] / ms / 1000:.2f})" if ms else row[kind]["error"][:60])
        print(f"| {row['config']} | {row['batch']} | {row['precision']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
