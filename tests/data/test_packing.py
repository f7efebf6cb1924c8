"""Packing: every item lands whole in one row, rows do not overlap, and a packed batch gives
every family that reads packed rows the padded batch's loss and gradients."""

import pytest
import torch
from torch.testing import assert_close

from makemore.data.examples import sequences
from makemore.data.packing import pack, plan, trim
from makemore.data.tokens import IGNORE
from makemore.data.vocab import BOUNDARY, Vocabulary

from ..models.test_families import BLOCK, FAMILIES, V

# 12 items over V - 1 = 10 characters, at most BLOCK - 1 long (the end token makes BLOCK)
ITEMS = ["abc", "defghij", "ab", "cdefg", "h", "ijab", "cd", "efghija", "b", "cdef", "ghi", "jabcde"]


def padded(K=2):
    vocab = Vocabulary.from_items(ITEMS)
    assert vocab.size == V
    x, y = sequences(ITEMS, vocab, BLOCK)
    return x.view(K, -1, BLOCK), y.view(K, -1, BLOCK)


@pytest.mark.parametrize("lengths, width", [([5, 5, 5], 10), ([3, 9, 1, 7, 2, 2, 4], 9), ([4] * 7, 4), ([1], 1)])
def test_plan_places_every_item_once_without_overlap(lengths, width):
    rows, columns, count = plan(lengths, width)
    taken = set()
    for length, row, column in zip(lengths, rows, columns):
        assert 0 <= row < count and column + length <= width
        cells = {(row, column + t) for t in range(length)}
        assert not cells & taken
        taken |= cells
    assert -(-sum(lengths) // width) <= count <= len(lengths)
    assert plan(lengths, width) == (rows, columns, count)  # no randomness


def test_plan_fills_rows_best_first():
    assert plan([5, 5, 5], 10)[2] == 2
    assert plan([6, 4, 5, 5], 10)[2] == 2  # 6 + 4 and 5 + 5


@pytest.mark.parametrize("row_width", [1.0, 2.0])
def test_pack_keeps_every_token_and_target_with_its_position(row_width):
    x, y = padded()
    for k in range(len(x)):
        px, py, pos = pack(x[k], y[k], row_width)
        lengths = (y[k] != IGNORE).sum(1)
        assert px.shape[1] == int(torch.ceil(row_width * lengths.max()))
        assert px.shape[0] < len(lengths)  # fewer rows than items
        # every item, cut from the rows where its positions start at 0, is the padded one
        found = []
        for row in range(px.shape[0]):
            starts = (pos[row] == 0).nonzero().flatten().tolist() + [px.shape[1]]
            for a, b in zip(starts, starts[1:]):
                if py[row, a] != IGNORE:
                    assert pos[row, a:b].tolist() == list(range(b - a))
                    found.append((px[row, a:b].tolist(), py[row, a:b].tolist()))
                else:  # padding: an item of one token with nothing to predict
                    assert b - a == 1 and px[row, a] == BOUNDARY
        expected = [(x[k, i, :n].tolist(), y[k, i, :n].tolist()) for i, n in enumerate(lengths.tolist())]
        assert sorted(found) == sorted(expected)
        assert int((py != IGNORE).sum()) == int(lengths.sum())


def test_trim_drops_only_the_columns_no_target_reaches():
    x, y = padded()
    tx, ty = trim(x[0], y[0])
    width = int((y[0] != IGNORE).sum(1).max())
    assert ty.shape == (y.shape[1], width) and torch.equal(tx, x[0][:, :width])
    assert int((ty != IGNORE).sum()) == int((y[0] != IGNORE).sum())


PACKING = [name for name, make in FAMILIES.items() if make().pack_rows is not None]


def test_the_sequence_families_read_packed_rows():
    assert {"transformer", "bow", "rnn", "lstm", "gru", "ensemble"} <= set(PACKING)


@pytest.mark.parametrize("name", PACKING)
def test_packed_rows_give_the_padded_loss_and_gradients(name):
    x, y = padded()
    net = FAMILIES[name]().eval()  # dropout off: the same arithmetic, not the same random masks
    params = list(net.parameters())
    for xb, yb in zip(x, y):
        px, py, pos = pack(xb, yb, net.pack_rows)
        expected = net.loss(xb, yb, "sum")
        got = net.loss(px, py, "sum", pos)
        assert_close(got, expected, rtol=1e-5, atol=1e-5)
        for a, b in zip(torch.autograd.grad(got, params), torch.autograd.grad(expected, params)):
            assert_close(a, b, rtol=1e-4, atol=1e-5)
