"""Shrink a training checkpoint to what ``predict`` needs and put it under checkpoints/.

    python scripts/make_pretrained.py checkpoints/v5-1/best-step=...ckpt checkpoints/pretrained-v5

Keeps the weights and their digest, the model's hyperparameters (net, vocabulary, block size)
and the data settings with the data file's fingerprint; drops optimizer and scheduler state and
the loops' progress. The file keeps its name (``best-step=...-val_loss=...``), so ``predict``
can rank it among a run's checkpoints.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint written by fit")
    parser.add_argument("folder", help="where the small checkpoint goes")
    args = parser.parse_args()
    source = Path(args.checkpoint)
    full = torch.load(source, map_location="cpu", weights_only=True)
    small = {key: full[key] for key in KEEP if key in full}
    target = Path(args.folder) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(small, target)
    print(f"{target}: {target.stat().st_size:,} bytes (from {source.stat().st_size:,})")


if __name__ == "__main__":
    main()
