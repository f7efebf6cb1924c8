"""Packed rows against padded batches, per sequence family, side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/packing.py --data ../shared/data/names.txt

For each config: the same 50 batches of ``data.batch_size`` training items, forward and backward
of the training loss (dropout as configured), once padded to each batch's longest item and once
packed into rows ``pack_rows`` times as wide (``makemore.data.packing``), alternating ``--rounds``
times. Reports positions per batch (what a step pays for), the targets in it, and the median
microseconds per step of each; ``packed / padded`` below 1 means packing is faster. This is how
``pack_by_default`` was chosen for each family.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from makemore.cli import run
from makemore.data.packing import pack, trim


def measure(config: str, data: str | None, rounds: int) -> dict:
    cli = run(["--config", config, *(["--data.path", data] if data else [])], subcommand=False)
    net, dataset = cli.model.net, cli.datamodule.dataset("train")
    if net.pack_rows is None:
        raise SystemExit(f"{config}: {type(net).__name__} does not read packed rows")
    ids = torch.randint(len(dataset), (50, cli.datamodule.batch_size), generator=torch.Generator().manual_seed(0))
    x, y = dataset[ids]
    # Each batch as training_step prepares it: trimmed past its longest item, or packed.
    padded = [(*trim(xb, yb), None) for xb, yb in zip(x, y)]
    kinds = {"padded": padded, "packed": [pack(xb, yb, net.pack_rows) for xb, yb in zip(x, y)]}
    times = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind in kinds if round_ % 2 == 0 else reversed(list(kinds)):
            start = time.perf_counter()
            for inputs, targets, positions in kinds[kind]:
                net.loss(inputs, targets, "mean", positions).backward()
            times[kind].append((time.perf_counter() - start) / len(kinds[kind]) * 1e6)
    us = {kind: statistics.median(values) for kind, values in times.items()}
    return {
        "config": Path(config).stem,
        "targets": int((y != -1).sum()) / len(y),
        "positions": {kind: sum(b[0].numel() for b in batches) / len(batches) for kind, batches in kinds.items()},
        "us_per_step": us,
        "packed_over_padded": us["packed"] / us["padded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    families = ("transformer", "bow", "rnn", "gru")
    parser.add_argument("configs", nargs="*", default=[f"configs/{name}.yaml" for name in families])
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--rounds", type=int, default=6, help="alternations of the two")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    rows = [measure(config, args.data, args.rounds) for config in args.configs]
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print("| config | targets | positions padded | packed | µs/step padded | packed | packed / padded |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        p, us = r["positions"], r["us_per_step"]
        cells = [f"{r['targets']:.0f}", f"{p['padded']:.0f}", f"{p['packed']:.0f}", f"{us['padded']:.0f}"]
        cells += [f"{us['packed']:.0f}", f"{r['packed_over_padded']:.2f}"]
        print(f"| {r['config']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
