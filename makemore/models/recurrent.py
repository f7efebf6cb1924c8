"""Recurrent language models over whole sequences: RNN (Mikolov et al. 2010), LSTM (Graves 2013)
and GRU (Cho et al. 2014), one or more layers of hand-built cells."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from makemore.checks import positive, probability
from makemore.errors import MakemoreError
from makemore.models.base import CharModel
from makemore.nn.cells import GRUCell, LSTMCell, RNNCell
from makemore.nn.layers import Dropout, Embedding, Linear, TokenDropout

CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


class Recurrent(CharModel):
    """A sequence model: ``forward(idx (B, T)) -> logits (B, T, vocab_size)``.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: longest input (set from the data; a recurrent net has no limit of its own).
        cell: ``rnn``, ``lstm`` or ``gru``.
        n_embd: size of each token's embedding.
        n_hidden: size of each layer's hidden state.
        n_layer: stacked layers; layer l reads layer l-1's hidden states.
        dropout: dropout on the embeddings, between layers and before the head.
        weight_drop: DropConnect on each layer's hidden-to-hidden weights, one mask per
            forward pass shared by every time step (the recurrent path's regulariser).
        token_drop: in training, hide each input character's embedding with this probability.
    """

    examples = "sequences"
    # A row is read one position after another: a row as wide as the longest item adds no
    # steps. Packed, fewer rows but a restart at every step: no faster at these sizes.
    pack_rows = 1.0
    pack_by_default = False

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        cell: Literal["rnn", "lstm", "gru"] = "gru",
        n_embd: int = 64,
        n_hidden: int = 128,
        n_layer: int = 1,
        dropout: float = 0.0,
        weight_drop: float = 0.0,
        token_drop: float = 0.0,
    ):
        super().__init__()
        if cell not in CELLS:  # in an Ensemble's or NewItems' net nothing else checks it
            raise MakemoreError(f"--model.net.init_args.cell must be one of {', '.join(CELLS)}, got {cell!r}")
        for name, size in (("n_embd", n_embd), ("n_hidden", n_hidden), ("n_layer", n_layer)):
            positive(name, size)
        for name, p in (("dropout", dropout), ("weight_drop", weight_drop), ("token_drop", token_drop)):
            probability(name, p)
        self.block_size = block_size
        self.wte = Embedding(vocab_size, n_embd)
        sizes = [n_embd] + [n_hidden] * (n_layer - 1)
        self.cells = nn.ModuleList(CELLS[cell](size, n_hidden) for size in sizes)
        self.start = nn.Parameter(torch.zeros(n_layer, n_hidden))  # learned initial hidden state
        self.drop = Dropout(dropout)
        self.weight_drop = Dropout(weight_drop)
        self.token_drop = TokenDropout(token_drop)
        self.head = Linear(n_hidden, vocab_size)
        with torch.no_grad():
            self.head.weight.mul_(0.1)  # a less confident first guess: loss starts near ln(vocab)

    def initial_state(self, batch_size: int) -> list:
        """Per layer: ``h`` (``(h, c)`` for an LSTM, ``c`` starting at zero)."""
        states = []
        for layer, cell in enumerate(self.cells):
            h = self.start[layer].expand(batch_size, -1)
            states.append((h, torch.zeros_like(h)) if isinstance(cell, LSTMCell) else h)
        return states

    def forward(
        self, idx: torch.Tensor, states: list | None = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``states`` (a list, updated in place), ``idx`` continues from those states. With
        ``positions`` (each token's position in its item), rows hold several items each: the
        state restarts wherever an item starts."""
        x = self.drop(self.token_drop(self.wte(idx)))
        current = states if states is not None else self.initial_state(idx.shape[0])
        restarts = (positions == 0).unsqueeze(-1).unbind(1) if positions is not None else None
        for layer, cell in enumerate(self.cells):
            inputs = cell.project(x).unbind(1)  # every step's input term in one matmul
            weight = self.weight_drop(cell.hidden_proj.weight) if self.weight_drop.p else None
            state, outputs, start = current[layer], [], self.start[layer]
            for t, step_input in enumerate(inputs):
                if restarts is not None and t > 0:
                    state = _restart(state, restarts[t], start)
                state = cell.recur(step_input, state, weight)
                outputs.append(state[0] if isinstance(state, tuple) else state)
            current[layer] = state
            x = self.drop(torch.stack(outputs, dim=1))
        return self.head(x)

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> list:
        return self.initial_state(batch_size)

    def decode_step(self, tokens: torch.Tensor, states: list) -> torch.Tensor:
        return self(tokens, states)[:, -1]


def _restart(state, where: torch.Tensor, start: torch.Tensor):
    """The state with rows ``where`` back at their start (an LSTM's cell state at zero)."""
    if isinstance(state, tuple):
        return torch.where(where, start, state[0]), torch.where(where, 0.0, state[1])
    return torch.where(where, start, state)
