"""``--model.compile``: the training loss compiled with ``torch.compile``.

The net's ``loss`` method is compiled, not the net: the module keeps its own parameters and
state-dict keys (no ``_orig_mod.`` prefix), and evaluation, sampling and decoding run the plain
net. Shapes are kept fixed so one graph serves every step: window batches are fixed already, and
sequence batches keep their full padded width (no trimming, no packing) when compiled.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compiled_loss(net: torch.nn.Module, mode: str | None = None, backend="inductor") -> Callable:
    """``net.loss`` compiled, in torch.compile's ``mode`` (None: its default)."""
    options = {"mode": mode} if backend == "inductor" and mode is not None else {}
    return torch.compile(net.loss, backend=backend, dynamic=False, fullgraph=True, **options)
