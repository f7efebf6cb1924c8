"""The few collective operations training (and the synchronised BatchNorm, ``makemore.nn.layers``)
needs when several processes train one model (DDP).

With one process every function here is the identity or a no-op, so the single-process path
pays nothing.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes training together: 1 without an initialised process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward is an all-reduce too: the gradient of a sum of every
    rank's loss with respect to a statistic that every rank shares."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def summed(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over all ranks, differentiably."""
    return _SumOverRanks.apply(tensor) if world_size() > 1 else tensor


def gathered(tensor: torch.Tensor) -> torch.Tensor:
    """``(world_size, *tensor.shape)``: every rank's ``tensor``, in rank order."""
    if world_size() == 1:
        return tensor[None]
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


@torch.no_grad()
def sum_gradients_and_normalise(params: list[torch.nn.Parameter], count: torch.Tensor) -> None:
    """Every rank's gradients of its *summed* loss and its target ``count`` are added up in one
    all-reduce, then divided by the total count: every rank ends with the gradient of the mean
    loss over the global batch, exactly what one process with the whole batch computes."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] + [count.reshape(1).to(grads[0].dtype)])
    if world_size() > 1:  # one process: its own sums (batches accumulated), divided the same way
        dist.all_reduce(flat)
    flat /= flat[-1].clone()
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
