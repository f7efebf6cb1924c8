"""The hand-built RNN, LSTM and GRU cells against torch's cells with copied weights."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from makemore.recurrent import GRUCell, LSTMCell, RNNCell

PAIRS = [(RNNCell, nn.RNNCell), (LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)]


def copy_weights(mine, theirs):
    with torch.no_grad():
        mine.input_proj.weight.copy_(theirs.weight_ih.T)
        mine.input_proj.bias.copy_(theirs.bias_ih)
        mine.hidden_proj.weight.copy_(theirs.weight_hh.T)
        mine.hidden_proj.bias.copy_(theirs.bias_hh)


@pytest.mark.parametrize("mine_cls, torch_cls", PAIRS, ids=["rnn", "lstm", "gru"])
def test_cell_matches_torch_over_several_steps(mine_cls, torch_cls):
    mine, theirs = mine_cls(5, 7), torch_cls(5, 7)
    copy_weights(mine, theirs)
    xs = torch.randn(4, 3, 5, requires_grad=True)  # 4 time steps, batch 3
    h0 = torch.randn(3, 7)
    lstm = mine_cls is LSTMCell
    outputs = []
    for module in (mine, theirs):
        state = (h0, torch.zeros(3, 7)) if lstm else h0
        total = 0
        for x in xs:
            state = module(x, state)
            total = total + (state[0] if lstm else state).sin().sum()
        total.backward()
        grad_x = xs.grad.clone()
        xs.grad = None
        outputs.append((total.detach(), grad_x))
    assert_close(outputs[0], outputs[1])
    # parameter gradients, in torch's layout
    assert_close(mine.input_proj.weight.grad.T, theirs.weight_ih.grad)
    assert_close(mine.hidden_proj.weight.grad.T, theirs.weight_hh.grad)
    assert_close(mine.input_proj.bias.grad, theirs.bias_ih.grad)
    assert_close(mine.hidden_proj.bias.grad, theirs.bias_hh.grad)


def test_parameter_counts_match_torch():
    for mine_cls, torch_cls in PAIRS:
        mine, theirs = mine_cls(6, 10), torch_cls(6, 10)
        assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in theirs.parameters())
