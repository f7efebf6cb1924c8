"""A checkpoint file read safely, as a dictionary: training resumes and checks from it, inference
builds its net from it (``makemore.inference.loading``).

``torch.load(weights_only=True)`` refuses any pickle that would run code, and the weights are
checked against the digest stored beside them when the file was written
(``makemore.training.checkpoint``). A path that is no regular file (a FIFO, a device) is named for
what it is before it is opened.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
import zipfile
from pathlib import Path

import torch

from makemore.data.items import file_kind, stat_problem
from makemore.digests import weights_digest
from makemore.errors import MakemoreError

WEIGHTS_DIGEST = "state_dict_sha256"  # written beside the weights (makemore.training.checkpoint)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dictionary, or a one-line error saying why it cannot be used."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # before opening: a FIFO would block
    except OSError as err:
        raise MakemoreError(f"checkpoint {path} {stat_problem(err)}; pass a .ckpt file with --ckpt_path") from None
    if not stat.S_ISREG(mode):
        raise MakemoreError(f"checkpoint {path} is {file_kind(mode)}; pass a .ckpt file with --ckpt_path")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise MakemoreError(f"checkpoint {path} is truncated or not a checkpoint (not a torch.save archive)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise MakemoreError(
            f"checkpoint {path} was refused without running it: it holds objects that could run code{what}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise MakemoreError(f"checkpoint {path} is truncated or not a checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise MakemoreError(f"checkpoint {path} is not a makemore checkpoint (no state_dict and hyper_parameters)")
    stored = checkpoint.get(WEIGHTS_DIGEST)  # None in checkpoints written before digests were stored
    if stored is not None and stored != weights_digest(checkpoint["state_dict"]):
        raise MakemoreError(
            f"checkpoint {path} is damaged: its weights differ from the digest stored when it was written; "
            "use another copy or another checkpoint of the run"
        )
    return checkpoint
