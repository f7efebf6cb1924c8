"""``--model.compile``: the training loss compiled with ``torch.compile``.

The net's ``loss`` method is compiled, not the net: the module keeps its own parameters and
state-dict keys (no ``_orig_mod.`` prefix), and evaluation, sampling and decoding run the plain
net. Shapes are kept fixed so one graph serves every step: window batches are fixed already, and
sequence batches keep their full padded width (no trimming, no packing) when compiled. The mode
defaults to CUDA graphs (``reduce-overhead``) on a GPU, where these small nets are bound by kernel
launches, and to ``default`` elsewhere, or when the whole step is captured as one CUDA graph
(``makemore.training.cuda_graph``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def pick_mode(mode: str | None, device: torch.device, graphed: bool = False) -> str:
    """``mode`` as given, else CUDA graphs (``reduce-overhead``) on a GPU and ``default``
    elsewhere; a step captured whole (``--model.cuda_graph``) takes no graphs of compile's own."""
    if mode is not None:
        return mode
    return "reduce-overhead" if device.type == "cuda" and not graphed else "default"


def compiled_loss(net: torch.nn.Module, mode: str, backend="inductor") -> Callable:
    """``net.loss`` compiled, in ``mode`` (``pick_mode``)."""
    options = {"mode": mode} if backend == "inductor" else {}
    return torch.compile(net.loss, backend=backend, dynamic=False, fullgraph=True, **options)
