"""Draw the validation curves of several runs on one plot, from their TensorBoard events.

    python scripts/plot_curves.py checkpoints/v5-1 checkpoints/transformer-1 ... --out docs/curves.png

Each run directory's ``val_loss`` is drawn against the optimizer step (log scale: the families
train for 20,000 to 200,000 steps), labelled by the run's config name; a run validated once (the
bigram, fitted by counting) is a dashed level. Needs matplotlib
(``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml


def val_curve(run: Path) -> list[tuple[int, float]]:
    """``(step, val_loss)`` of a run: the first value logged at each step, fit's own validation
    (a resumed run may log one again; ``benchmarks/table.py`` logs its evaluations after it)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
    if "val_loss" not in events.Tags()["scalars"]:
        raise SystemExit(f"error: {run} has no val_loss in its TensorBoard events; pass a run directory of fit")
    first: dict[int, float] = {}
    for event in events.Scalars("val_loss"):
        first.setdefault(event.step, event.value)
    return sorted(first.items())


def label(run: Path, points: list[tuple[int, float]]) -> str:
    """The config name (``v5-1`` or ``table-v5-1`` -> ``v5``), its last val_loss, and how far a run
    still training has got (its saved config gives the steps it will take)."""
    name = re.sub(r"^table-|-\d+$", "", run.name)
    step, value = points[-1]
    config = run / "config.yaml"
    planned = yaml.safe_load(config.read_text())["trainer"]["max_steps"] if config.is_file() else step
    return f"{name} ({value:.3f})" if step >= planned else f"{name} ({value:.3f} at step {step:,} of {planned:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories written by fit")
    parser.add_argument("--out", type=Path, default=Path("docs/curves.png"))
    parser.add_argument("--title", default="Validation loss of every family (names.txt, lecture split)")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")  # a file, no screen
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    curves = sorted(((run, val_curve(run)) for run in args.runs), key=lambda c: -c[1][-1][1])
    for run, points in curves:
        steps, values = zip(*points)
        if len(points) == 1:  # fitted at once (the bigram): a level, not a curve
            ax.axhline(values[0], linestyle="--", color="gray", label=label(run, points))
        else:
            ax.plot(steps, values, label=label(run, points))
    ax.set_xscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("validation loss (nats per character)")
    ax.set_title(args.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="config (last val_loss)", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
