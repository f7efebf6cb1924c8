"""Fingerprints that let a checkpoint recognise its data file and check its own weights.

Both are SHA-256 digests. They guard against accidents (another file with the same alphabet, a
few flipped bytes in a copy), not against an attacker, who could recompute them: what keeps a
hostile checkpoint harmless is that nothing read from it chooses code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch


def file_fingerprint(path: str | Path) -> dict:
    """``{"path": absolute path, "size": bytes, "sha256": hex}`` of a data file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": os.path.abspath(path), "size": os.path.getsize(path), "sha256": digest.hexdigest()}


def same_file(recorded: dict, current: dict) -> bool:
    return recorded.get("size") == current.get("size") and recorded.get("sha256") == current.get("sha256")


def weights_digest(state_dict: dict) -> str:
    """SHA-256 over a state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            digest.update(f"{name}={tensor!r};".encode())
            continue
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()
