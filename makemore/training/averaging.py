"""An exponential moving average of a net's weights, the copy that is evaluated and sampled.

After every optimizer step the average moves toward the trained weights::

    avg = avg + (1 - d) * (w - avg),    d = min(decay, (1 + n) / (10 + n))

``n`` counts the updates; the warm-up of ``d`` lets a short run's average forget its random
start. Averaging the weights of the last few thousand steps smooths out the noise of the
last updates, which on small data sets is worth more than the last steps of a decaying
learning rate (Polyak & Juditsky 1992).

Not ``torch.optim.swa_utils.AveragedModel``: its copy lives under other state-dict keys
(``module.*``, plus an ``n_averaged`` buffer), so every checkpoint written so far would no longer
load, and its decay has no warm-up without a custom averaging function of about this size.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from makemore.errors import MakemoreError


class AveragedNet(nn.Module):
    """Holds ``net``'s averaged twin as ``self.net`` (checkpoints save it as ``ema_net.net.*``
    under ``CharLM``) and the number of updates (saved as extra state, so a resumed run
    continues the same average)."""

    def __init__(self, net: nn.Module, decay: float):
        super().__init__()
        if not 0 < decay < 1:
            raise MakemoreError(f"--model.ema_decay must lie strictly between 0 and 1 (e.g. 0.999), got {decay}")
        self.decay = decay
        self.net = copy.deepcopy(net).requires_grad_(False)
        self._params = list(self.net.parameters())  # loads and device moves keep these objects
        self.updates = 0

    def get_extra_state(self) -> dict:
        return {"updates": self.updates}

    def set_extra_state(self, state: dict) -> None:
        self.updates = int(state["updates"])

    def next_weight(self) -> float:
        """``1 - d`` of the next update, which this counts as done."""
        n = self.updates
        self.updates += 1
        return 1 - min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, params: list[torch.Tensor]) -> None:
        """One step toward ``params`` (the trained net's parameters, in ``net.parameters()`` order)."""
        weight = self.next_weight()
        for mine, theirs in zip(self._params, params):
            mine.lerp_(theirs, weight)

    @torch.no_grad()
    def copy_buffers(self, net: nn.Module) -> None:
        """BatchNorm's running statistics are not averaged: the trained net's are taken as they are."""
        for mine, theirs in zip(self.net.buffers(), net.buffers()):
            if mine.shape == theirs.shape:
                mine.copy_(theirs)
            else:  # V3's BatchNorm grows its buffers on the first training step
                mine.data = theirs.detach().clone()
