"""A hand-written SGD and a step-based learning-rate decay."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay.

    Per parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p
        v = momentum * v + g          (v starts as the first g, as in torch.optim.SGD)
        p = p - lr * (v if momentum else g)
    """

    def __init__(self, params: Iterable, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD needs lr, momentum and weight_decay >= 0, got {lr}, {momentum}, {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:  # Lightning runs forward and backward inside the closure
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if group["momentum"]:
                grads = self._momentum(params, grads, group["momentum"])
            torch._foreach_add_(params, grads, alpha=-group["lr"])
        return loss

    def _momentum(self, params: list, grads: list, momentum: float) -> list:
        velocities = []
        for p, g in zip(params, grads):
            state = self.state[p]
            if "velocity" not in state:
                state["velocity"] = g.clone()
            else:
                state["velocity"].mul_(momentum).add_(g)
            velocities.append(state["velocity"])
        return velocities


class MilestoneDecay(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each step milestone; step it every step.

    The rate at step ``s`` is ``base_lr * gamma ** (number of milestones <= s)``, computed in
    closed form, so it is the same after a resume as in an unbroken run.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: list[int], gamma: float = 0.1):
        self.milestones = sorted(milestones)
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * factor for base in self.base_lrs]
