"""A hand-written SGD and step-based learning-rate schedules (milestone decay, warm-up + cosine)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim.lr_scheduler import LRScheduler

from makemore.checks import finite
from makemore.errors import MakemoreError


def parameter_groups(net: torch.nn.Module, decay_vectors: bool = True):
    """``net``'s parameters for an optimizer; ``decay_vectors=False`` puts those with fewer than two
    dimensions in a group without weight decay: decay pulls a LayerNorm gain towards 0, not
    towards its neutral 1, and biases need no limit."""
    if decay_vectors:
        return net.parameters()
    params = list(net.parameters())
    return [
        {"params": [p for p in params if p.ndim >= 2]},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay.

    Per parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p
        v = momentum * v + g          (v starts as the first g, as in torch.optim.SGD)
        p = p - lr * (v if momentum else g)
    """

    def __init__(self, params: Iterable, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0):
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not 0 <= float(value) < math.inf:  # NaN fails this too
                raise ValueError(f"SGD needs a finite {name} >= 0, got {float(value)}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:  # Lightning runs forward and backward inside the closure
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = [g + group["weight_decay"] * p for g, p in zip(grads, params)]
            if group["momentum"]:
                grads = self._momentum(params, grads, group["momentum"])
            for p, g in zip(params, grads):
                p.add_(g, alpha=-group["lr"])
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
        # A negative gamma would flip the rate's sign at every milestone: gradient ascent.
        self.gamma = finite("--model.lr_scheduler.init_args.gamma", gamma, low=0)
        if any(step < 0 for step in milestones):
            raise MakemoreError(f"--model.lr_scheduler.init_args.milestones must be steps >= 0, got {milestones}")
        self.milestones = sorted(milestones)
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * factor for base in self.base_lrs]


class WarmupCosine(LRScheduler):
    """Linear warm-up, then a cosine decay; step it every step.

    The rate rises from ``base_lr / warmup_steps`` to ``base_lr`` over ``warmup_steps`` steps,
    then follows half a cosine down to ``base_lr * min_factor`` at ``total_steps`` and stays
    there. Closed form in the step, like ``MilestoneDecay``. In a config, ``total_steps: null``
    is the run's ``trainer.max_steps``, whatever the command line sets it to.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int | None = None,
        warmup_steps: int = 0,
        min_factor: float = 0.1,
    ):
        if total_steps is None:  # the CLI sets it to the run's max_steps before building this
            raise ValueError("WarmupCosine needs total_steps (null in a config: the run's max_steps)")
        if warmup_steps < 0 or total_steps < 1:
            raise ValueError(f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps} and {total_steps}")
        if warmup_steps >= total_steps:  # a short trial run of a long recipe: allowed, but said
            rank_zero_warn(f"the warm-up ({warmup_steps} steps) outlasts the schedule ({total_steps} steps)")
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        # Below 0 the rate turns negative at the end (gradient ascent); above 1 it rises instead.
        self.min_factor = finite("--model.lr_scheduler.init_args.min_factor", min_factor, low=0, high=1)
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]
