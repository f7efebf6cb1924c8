"""The hand-built RNN, LSTM and GRU cells against torch's cells with copied weights."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from makemore.nn.cells import GRUCell, LSTMCell, RNNCell

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


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_drop_masks_the_hidden_weights_once_per_sequence_and_only_in_training(cell):
    from makemore.models import Recurrent

    torch.manual_seed(0)
    net = Recurrent(7, 10, cell=cell, n_embd=8, n_hidden=16, n_layer=2, weight_drop=0.5)
    idx = torch.randint(0, 7, (4, 9))
    seen = []
    for layer in net.cells:  # record the weight each step of each layer is given
        original = layer.recur
        layer.recur = lambda x, s, w, original=original: (seen.append(w), original(x, s, w))[1]
    net.train()(idx)
    for layer, start in zip(net.cells, (0, 9)):
        weights = seen[start : start + 9]
        assert all(w is weights[0] for w in weights)  # one mask for every time step
        w, ref = weights[0], layer.hidden_proj.weight
        kept = w != 0
        assert 0.3 < kept.float().mean() < 0.7
        assert_close(w[kept], ref[kept] * 2)  # the kept ones scaled by 1 / (1 - p)
    seen.clear()
    plain = Recurrent(7, 10, cell=cell, n_embd=8, n_hidden=16, n_layer=2)
    plain.load_state_dict(net.state_dict())
    assert_close(net.eval()(idx), plain.eval()(idx))  # eval: no mask at all
