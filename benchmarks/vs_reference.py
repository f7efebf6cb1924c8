"""``fit`` against the reference makemore.py (github.com/karpathy/makemore), side by side.

    python benchmarks/vs_reference.py --reference /path/to/makemore.py --data ../shared/data/names.txt

For each family the two train at the same time, one CPU thread each (so a shared machine's
drift hits both), on the same file with batches of 32 items and the reference's sizes: the
Transformer with 4 layers, 4 heads and 64 channels; the RNN and GRU with 64-wide embeddings and
hidden states. The reference runs with ``-n 0`` (no loader processes: one thread) and prints
the time of every tenth step; its speed is the median of those after the first tenth of the
run. Ours is ``python -m makemore fit --config configs/<family>.yaml`` with the sizes set to
match and nothing else changed (its own dropout, weight average, logging and checkpoints),
timed over its training steps (``timing.StepTimer``). ``--fit-args`` adds flags to ours.
The table gives items (names) per second of each and their ratio, the median over rounds.

The reference script is not part of this project: download it and pass its path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BATCH = 32
SIZES = {  # the reference's defaults, as our flags
    "transformer": "--model.net.init_args.n_layer 4 --model.net.init_args.n_head 4 --model.net.init_args.n_embd 64",
    "rnn": "--model.net.init_args.n_embd 64 --model.net.init_args.n_hidden 64 --model.net.init_args.n_layer 1",
    "gru": "--model.net.init_args.n_embd 64 --model.net.init_args.n_hidden 64 --model.net.init_args.n_layer 1",
}


def one_thread() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start_reference(args, family: str, workdir: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(args.reference).resolve()), "-i", str(Path(args.data).resolve()), "-n", "0"]
    cmd += ["--type", family, "--max-steps", str(args.steps), "--batch-size", str(BATCH), "-o", str(workdir)]
    return subprocess.Popen(
        cmd, cwd=workdir, env=one_thread(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def start_ours(args, family: str) -> subprocess.Popen:
    extra = f"{SIZES[family]} --data.batch_size {BATCH} {args.fit_args}"
    cmd = [sys.executable, str(HERE / "fit_vs_plain.py"), f"configs/{family}.yaml", "--child", "fit"]
    cmd += ["--steps", str(args.steps), "--data", str(Path(args.data).resolve()), "--fit-args", extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=one_thread(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, what: str) -> str:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{what} failed:\n{err[-3000:]}")
    return out


def reference_rate(out: str, steps: int) -> float:
    times = [(int(s), float(ms)) for s, ms in re.findall(r"step (\d+) \|.*step time ([\d.]+)ms", out)]
    kept = [ms for step, ms in times if step >= steps // 10]
    if not kept:
        raise SystemExit("no step times in the reference's output; does --reference point at makemore.py?")
    return BATCH / (statistics.median(kept) / 1000)


def ours_rate(out: str) -> float:
    row = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    return BATCH * row["steps"] / row["seconds"]


def compare(args, family: str, workdir: Path) -> dict:
    ref_rates, our_rates = [], []
    for _ in range(args.rounds):
        reference, ours = start_reference(args, family, workdir), start_ours(args, family)
        our_rates.append(ours_rate(finished(ours, f"fit {family}")))
        ref_rates.append(reference_rate(finished(reference, f"makemore.py {family}"), args.steps))
    ratios = [o / r for o, r in zip(our_rates, ref_rates)]
    return {"family": family, "reference_items_per_s": ref_rates, "ours_items_per_s": our_rates, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="path to the reference makemore.py")
    parser.add_argument("--data", required=True, help="training file, e.g. names.txt")
    parser.add_argument("--families", nargs="*", default=["transformer", "gru", "rnn"], choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each run")
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side runs per family")
    parser.add_argument("--fit-args", default="", help="extra flags for our fit, e.g. '--model.pack false'")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if not Path(args.reference).is_file():
        raise SystemExit(f"error: --reference {args.reference} is not a file; download makemore.py first")
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "makemore-reference-run"
    workdir.mkdir(parents=True, exist_ok=True)
    results = [compare(args, family, workdir) for family in args.families]
    if args.json:
        Path(args.json).write_text(json.dumps({"args": shlex.join(sys.argv[1:]), "results": results}, indent=2))
    print("| family | makemore.py items/s | fit items/s | fit / makemore.py (median) | rounds |")
    print("|---|---|---|---|---|")
    for r in results:
        ref, ours = statistics.median(r["reference_items_per_s"]), statistics.median(r["ours_items_per_s"])
        rounds = ", ".join(f"{x:.2f}" for x in r["ratios"])
        print(f"| {r['family']} | {ref:,.0f} | {ours:,.0f} | {statistics.median(r['ratios']):.2f} | {rounds} |")


if __name__ == "__main__":
    main()
