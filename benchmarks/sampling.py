"""Sampling throughput: incremental decoding against recomputing the whole context, per family.

    python benchmarks/sampling.py --samples 1000 --rounds 3

Each config's net is built from the config (seeded, untrained: its samples rarely end early, so
every item runs to ``--max_length``, the most work) on the bundled dataset's vocabulary. Both
ways draw the same tokens from the same generator seed; items per second is ``--samples``
divided by the time to sample them all in one batch. The table gives the medians over
``--rounds`` and their ratio (incremental / recompute).

    OMP_NUM_THREADS=1 python benchmarks/sampling.py --constraints --samples 1000 --rounds 5

measures instead what constraints cost (``makemore.inference.constrained``): items per second of
plain incremental sampling and of sampling under ``--new_only --unique --min_length 6``, side by
side in every round, for the pretrained V5 (``makemore/assets/pretrained/v5/``) and an untrained
Transformer (``configs/transformer.yaml``), both at predict's default ``max_length``. Rejection
costs ``1 / share`` candidates per item kept; the ``overhead`` column is the cost per item kept
over plain sampling's, times the share kept: what the machinery adds on top of the constraint's
own cost (1.00: nothing). Its JSON goes to ``benchmarks/results/sampling_constraints.json``.
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
    from makemore.sampling.generate import sample

    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    sample(net, vocab, samples, max_length=max_length, generator=generator, incremental=incremental)
    return samples / (time.perf_counter() - start)


def pretrained_v5():
    from makemore.inference.loading import load

    (path,) = sorted((ROOT / "makemore/assets/pretrained/v5").glob("best-*.ckpt"))
    loaded = load(path)
    return loaded.net, loaded.vocab, 30  # predict's default max_length for a window model


def untrained_transformer():
    net, vocab = build("transformer")
    return net, vocab, net.block_size - 1  # predict's default: what the net sees


def constraints_rows(samples: int, rounds: int) -> list[dict]:
    """Plain and constrained items per second, side by side in every round, and the share kept."""
    from makemore.data.items import BUNDLED_DATASET, read_items
    from makemore.inference.constrained import sample_constrained
    from makemore.inference.constraints import Constraints
    from makemore.sampling.generate import sample

    known = frozenset(read_items(BUNDLED_DATASET))  # both nets' training file: what --new_only avoids
    rows = []
    for name, make in [("v5 (pretrained)", pretrained_v5), ("transformer (untrained)", untrained_transformer)]:
        net, vocab, max_length = make()
        rates = {"plain": [], "constrained": []}
        shares = []
        sample(net, vocab, 10, max_length=max_length)  # warm-up
        for round_ in range(rounds):
            generator = torch.Generator().manual_seed(round_)
            start = time.perf_counter()
            sample(net, vocab, samples, max_length=max_length, generator=generator)
            rates["plain"].append(samples / (time.perf_counter() - start))
            wanted = Constraints(min_length=6, max_length=max_length, excluded=known, unique=True)
            start = time.perf_counter()
            _, drawn = sample_constrained(net, vocab, wanted, samples, "", max_length, generator=generator)
            rates["constrained"].append(samples / (time.perf_counter() - start))
            shares.append(samples / drawn)
        plain, constrained = (statistics.median(rates[k]) for k in ("plain", "constrained"))
        share = statistics.median(shares)
        row = {"net": name, "max_length": max_length, "rates": rates, "shares": shares}
        rows.append(row | {"share": share, "cost_ratio": plain / constrained, "overhead": plain / constrained * share})
        print(f"{name}: plain {plain:.0f}/s, constrained {constrained:.0f}/s, kept {share:.1%}", file=sys.stderr)
    return rows


def constraints_table(rows: list[dict]) -> None:
    print("| net | plain items/s | constrained items/s | share kept | cost per item (x plain) | overhead |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        plain, constrained = (statistics.median(r["rates"][k]) for k in ("plain", "constrained"))
        print(
            f"| {r['net']} | {plain:.0f} | {constrained:.0f} | {r['share']:.1%} | {r['cost_ratio']:.2f} "
            f"| {r['overhead']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", default=CONFIGS)
    parser.add_argument("--samples", type=int, default=1000, help="items sampled per measurement")
    parser.add_argument("--max_length", type=int, default=15, help="characters per item at most")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--constraints", action="store_true", help="plain against constrained sampling instead")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]
    if args.constraints:
        rows = constraints_rows(args.samples, args.rounds)
        out = Path(args.json or ROOT / "benchmarks" / "results" / "sampling_constraints.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2))
        constraints_table(rows)
        return
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
