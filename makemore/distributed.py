"""The few collective operations training needs when several processes train one model (DDP).

With one process every function here is a no-op or the identity, so the single-process path
pays nothing.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_reduce as _differentiable_all_reduce


def world_size() -> int:
    """Processes training together: 1 without an initialised process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def summed(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over all ranks, differentiable: the gradient flowing back is summed too,
    as the gradient of a sum of every rank's loss must be."""
    return _differentiable_all_reduce(tensor) if world_size() > 1 else tensor


@torch.no_grad()
def sum_gradients_and_normalise(params: list[torch.nn.Parameter], count: torch.Tensor) -> None:
    """Every rank's gradients of its *summed* loss and its target ``count`` are added up in one
    all-reduce, then divided by the total count: every rank ends with the gradient of the mean
    loss over the global batch, exactly what one process with the whole batch computes."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [count.reshape(1).to(grads[0].dtype)])
    dist.all_reduce(flat)
    flat /= flat[-1]
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
