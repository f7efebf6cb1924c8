"""Sampling throughput: incremental decoding against recomputing the whole context, per family.

    python benchmarks/sampling.py --samples 1000 --rounds 3

Each config's net is built from the config (seeded, untrained: its samples rarely end early, so
every item runs to ``--max_length``, the most work) on the bundled dataset's vocabulary. Both
ways draw the same tokens from the same generator seed; items per second is ``--samples``
divided by the time to sample them all in one batch. The table gives the medians over
``--rounds`` and their ratio (incremental / recompute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# Every config but the lecture's V1-V4 (V5 stands for the line): a new family's config is included.
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml") if p.stem not in {"v1", "v2", "v3", "v4"})


def build(config: str):
    from makemore.cli import run

    cli = run(["--config", str(ROOT / "configs" / f"{config}.yaml")], subcommand=False)
    net = cli.model.net.eval()
    net.fit_data(cli.datamodule.dataset("train"))  # the bigram counts; the others need nothing
    return net, cli.model.vocab


def rate(net, vocab, samples: int, max_length: int, incremental: bool) -> float:
    from makemore.inference.generate import sample

    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    sample(net, vocab, samples, max_length=max_length, generator=generator, incremental=incremental)
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=CONFIGS)
    parser.add_argument("--samples", type=int, default=1000, help="items sampled per measurement")
    parser.add_argument("--max_length", type=int, default=15, help="characters per item at most")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]
    rows = []
    for config in args.configs:
        net, vocab = build(config)
        rates = {"incremental": [], "recompute": []}
        rate(net, vocab, 10, args.max_length, True)  # warm-up
        for _ in range(args.rounds):
            for kind in rates:
                rates[kind].append(rate(net, vocab, args.samples, args.max_length, kind == "incremental"))
        inc, full = (statistics.median(rates[k]) for k in ("incremental", "recompute"))
        rows.append({"config": config, "rates": rates, "ratio": inc / full})
        print(f"{config}: incremental {inc:.0f}/s, recompute {full:.0f}/s", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print("| config | incremental items/s | recompute items/s | incremental / recompute |")
    print("|---|---|---|---|")
    for r in rows:
        inc, full = (statistics.median(r["rates"][k]) for k in ("incremental", "recompute"))
        print(f"| {r['config']} | {inc:.0f} | {full:.0f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
