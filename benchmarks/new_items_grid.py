"""Validation and test loss of a trained sequence net evaluated through ``NewItems``, over a grid
of ``power`` and ``repeat_weight`` (choose by the validation column; the README's tuning rows).

    python benchmarks/new_items_grid.py RUN/last.ckpt --data ../shared/data/names.txt

The checkpoint may hold a plain net or a ``NewItems`` one (its net is then taken out); the data
must be the file and split it was trained on.
"""

from __future__ import annotations

import argparse

import torch

from makemore.data.datamodule import NamesDataModule
from makemore.inference.loading import load
from makemore.models import NewItems, nll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default=None, help="training file (default: the bundled dataset)")
    parser.add_argument("--powers", type=float, nargs="+", default=[0.25, 0.35, 0.5, 1.0])
    parser.add_argument("--repeat_weights", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--repeat_order", type=int, default=3)
    args = parser.parse_args()
    loaded = load(args.checkpoint)
    net = loaded.net.net if isinstance(loaded.net, NewItems) else loaded.net
    data = NamesDataModule(path=args.data, examples="sequences", **_split(loaded.data))
    data.setup("fit")
    splits = {name: data.tensors(name) for name in ("val", "test")}
    wrapped = NewItems(loaded.vocab.size, data.block_size, {"class_path": "Recurrent"}, repeat_order=args.repeat_order)
    wrapped.net = net  # the trained net in place of the placeholder
    wrapped.fit_data(data.dataset("train"))
    wrapped.eval()
    with torch.no_grad():
        plain = [nll(net(x), y).item() for x, y in splits.values()]
        print(f"{'power':>6} {'repeat':>6} {'val':>7} {'test':>7}")
        print(f"{'plain':>6} {'':>6} {plain[0]:7.4f} {plain[1]:7.4f}")
        for power in args.powers:
            for weight in args.repeat_weights:
                wrapped.power, wrapped.repeat_weight = power, weight
                val, test = (nll(wrapped(x), y).item() for x, y in splits.values())
                print(f"{power:6.2f} {weight:6.2f} {val:7.4f} {test:7.4f}")


def _split(saved: dict) -> dict:
    """The checkpoint's split settings, so the same items land in each split."""
    keys = ("split_seed", "train_fraction", "val_fraction")
    return {key: saved[key] for key in keys if key in saved}


if __name__ == "__main__":
    main()
