"""Hand-built recurrent cells: one time step ``(x_t, state) -> state``, the math written out.

Each cell keeps PyTorch's layout of gates (so tests can copy weights from ``nn.RNNCell``,
``nn.LSTMCell`` and ``nn.GRUCell``): an input projection and a hidden projection, both with bias,
whose outputs are the gates stacked along the last dimension.

A model calls ``project`` once on every time step's input (one matmul for the whole sequence),
then ``recur`` step by step; each step is written with as few tensor operations as the math
allows (``addmm`` adds a product to a sum in one call), because at these sizes a step costs
what its operations cost to launch, not their arithmetic.

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
        return self.recur(self.project(x), state)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The input's term of every step at once; the hidden bias, added at every step, rides along."""
        return self.input_proj(x) + self.hidden_proj.bias

    def hidden(self, h: torch.Tensor, base: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``base + h @ W_h``, with ``weight`` in place of ``W_h`` if given."""
        return torch.addmm(base, h, self.hidden_proj.weight if weight is None else weight)

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """One step from the projected input (``project``)."""
        return torch.tanh(self.hidden(h, x_proj, weight))


class LSTMCell(RNNCell):
    """Long short-term memory, as in Graves (2013): input, forget and output gates around a cell
    state ``c`` that is updated additively. State: ``(h, c)``; gate order i, f, g, o as in torch."""

    gates = 4

    def recur(
        self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        h, c = state
        gates = self.hidden(h, x_proj, weight)
        i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)  # one call for three gates (g's share unused)
        g = torch.tanh(gates[:, 2 * self.hidden_size : 3 * self.hidden_size])
        c = torch.addcmul(f * c, i, g)  # f * c + i * g
        return o * torch.tanh(c), c


class GRUCell(RNNCell):
    """Gated recurrent unit (Cho et al. 2014): a reset gate ``r`` and an update gate ``z``.

    ``n = tanh(W_xn x + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h = n + z * (h - n)``;
    gate order r, z, n.
    """

    gates = 3

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_proj(x)  # b_hn sits inside r * (...): the hidden bias stays in the step

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        # Measured: whole chunks beat fusing r's and z's sigmoid over strided slices.
        xr, xz, xn = x_proj.chunk(3, dim=-1)
        hr, hz, hn = self.hidden(h, self.hidden_proj.bias, weight).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(torch.addcmul(xn, r, hn))  # xn + r * hn
        return torch.addcmul(n, z, h - n)  # n + z * (h - n)
