"""Hand-built recurrent cells: one time step ``(x_t, state) -> state``, the math written out.

Each cell keeps PyTorch's layout of gates (so tests can copy weights from ``nn.RNNCell``,
``nn.LSTMCell`` and ``nn.GRUCell``): an input projection and a hidden projection, both with bias,
whose outputs are the gates stacked along the last dimension.

``recur`` takes an optional replacement for the hidden projection's weight: a model passes the
DropConnect'ed weight (Wan et al. 2013), drawn once per sequence, as AWD-LSTM does (Merity et
al. 2018) to regularise the recurrent path without disturbing the memory from step to step.
"""

from __future__ import annotations

import torch
from torch import nn

from makemore.nn.layers import Linear


class RNNCell(nn.Module):
    """Elman / Mikolov (2010): ``h' = tanh(W_x x + W_h h + b)``. State: ``h``."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_proj = Linear(input_size, self.gates * hidden_size)
        self.hidden_proj = Linear(hidden_size, self.gates * hidden_size)

    def forward(self, x, state):
        """One step from the input ``x``."""
        return self.recur(self.input_proj(x), state)

    def hidden(self, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden projection, with ``weight`` in place of its own if given."""
        return h @ (self.hidden_proj.weight if weight is None else weight) + self.hidden_proj.bias

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """One step from the already projected input (a model projects all steps at once)."""
        return torch.tanh(x_proj + self.hidden(h, weight))


class LSTMCell(RNNCell):
    """Long short-term memory, as in Graves (2013): input, forget and output gates around a cell
    state ``c`` that is updated additively. State: ``(h, c)``; gate order i, f, g, o as in torch."""

    gates = 4

    def recur(
        self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        h, c = state
        i, f, g, o = (x_proj + self.hidden(h, weight)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class GRUCell(RNNCell):
    """Gated recurrent unit (Cho et al. 2014): a reset gate ``r`` and an update gate ``z``.

    ``n = tanh(W_xn x + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``; gate order r, z, n.
    """

    gates = 3

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        xr, xz, xn = x_proj.chunk(3, dim=-1)
        hr, hz, hn = self.hidden(h, weight).chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h
