"""Shrink a training checkpoint to what ``predict`` needs and ship it inside the package.

    python scripts/make_pretrained.py checkpoints/v5-1/best-step=...ckpt            # -> makemore/assets/pretrained/v5/

Keeps the weights and their digest, the model's hyperparameters (net, vocabulary, block size)
and the data settings with the data file's fingerprint; drops optimizer and scheduler state and
the loops' progress. It goes to ``makemore/assets/pretrained/<name>/`` (package data: installed
with makemore), ``<name>`` being the run's name without its number (``v5-1`` -> ``v5``) or
``--name``; ``predict`` with no run samples ``v5``, and ``validate``/``test --config
configs/<name>.yaml`` with no run of that name evaluate ``<name>``. The file keeps its name
(``best-step=...-val_loss=...``), so it is ranked as a run's best checkpoint; a checkpoint
already there is replaced (one model per name).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

KEEP = (
    "state_dict",
    "state_dict_sha256",  # the weights' digest, checked on every load
    "hyper_parameters",
    "datamodule_hyper_parameters",  # with the data file's fingerprint
    "global_step",
    "pytorch-lightning_version",
)
PRETRAINED = Path(__file__).resolve().parent.parent / "makemore" / "assets" / "pretrained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint written by fit")
    parser.add_argument("--name", default=None, help="the model's name (default: its run's, less the number)")
    parser.add_argument("--folder", default=None, help="put it here instead (default: makemore/assets/pretrained/NAME)")
    args = parser.parse_args()
    source = Path(args.checkpoint)
    name = args.name or re.sub(r"-\d+$", "", source.resolve().parent.name)
    folder = Path(args.folder) if args.folder else PRETRAINED / name
    full = torch.load(source, map_location="cpu", weights_only=True)
    small = {key: full[key] for key in KEEP if key in full}
    folder.mkdir(parents=True, exist_ok=True)
    old = [f for f in folder.glob("*.ckpt") if f.name != source.name]
    target = folder / source.name
    torch.save(small, target)
    for f in old:
        f.unlink()
    print(f"{target}: {target.stat().st_size:,} bytes (from {source.stat().st_size:,})")


if __name__ == "__main__":
    main()
