"""``--model.compile``: the training loss compiled with ``torch.compile``.

The net's ``loss`` method is compiled, not the net: the module keeps its own parameters and
state-dict keys (no ``_orig_mod.`` prefix), and evaluation, sampling and decoding run the plain
net. Shapes are kept fixed so one graph serves every step: window batches are fixed already, and
sequence batches keep their full padded width (no trimming, no packing) when compiled. The mode
defaults to CUDA graphs (``reduce-overhead``) on a GPU, where these small nets are bound by kernel
launches, and to ``default`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def default_mode(device: torch.device) -> str:
    return "reduce-overhead" if device.type == "cuda" else "default"


def compiled_loss(net: torch.nn.Module, mode: str | None, device: torch.device, backend="inductor") -> Callable:
    """``net.loss`` compiled for ``device``; ``mode`` None picks ``default_mode(device)``."""
    mode = mode or default_mode(device)
    options = {"mode": mode} if backend == "inductor" else {}
    return torch.compile(net.loss, backend=backend, dynamic=False, fullgraph=True, **options)
