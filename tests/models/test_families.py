"""Properties every model family must have: causality, a near-uniform start, gradients to every
parameter, learning on a tiny batch; and the bigram's table in closed form."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torch.utils.data import TensorDataset

from makemore.models import MLP, Bigram, Ensemble, Recurrent, families, nll

V, BLOCK = 11, 8
# Every family with its default sizes: a new family is tested here without an edit. Wrappers
# take other nets, so they appear as the variants below.
FAMILIES = {
    name.lower(): (lambda family=family: family(V, BLOCK))
    for name, family in families().items()
    if family.__module__.startswith("makemore.models.") and ".wrappers." not in family.__module__
}
FAMILIES |= {
    "mlp-direct": lambda: MLP(V, BLOCK, n_embd=6, n_hidden=16, direct=True),
    "rnn": lambda: Recurrent(V, BLOCK, cell="rnn", n_embd=8, n_hidden=16, n_layer=2),
    "lstm": lambda: Recurrent(V, BLOCK, cell="lstm", n_embd=8, n_hidden=16, n_layer=2),
    "gru": lambda: Recurrent(V, BLOCK, cell="gru", n_embd=8, n_hidden=16, n_layer=2),
    "ensemble": lambda: Ensemble(
        V,
        BLOCK,
        [
            {"class_path": "makemore.models.Recurrent", "init_args": {"cell": "lstm", "n_embd": 8, "n_hidden": 16}},
            {"class_path": "makemore.models.Transformer", "init_args": {"n_layer": 1, "n_head": 2, "n_embd": 16}},
        ],
    ),
    "ensemble-windows": lambda: Ensemble(
        V, BLOCK, [{"class_path": "MLP", "init_args": {"n_embd": 6, "n_hidden": 16}}, {"class_path": "MLP"}]
    ),
}
SEQUENCE = [name for name, make in FAMILIES.items() if make().examples == "sequences"]
WINDOWS = [name for name, make in FAMILIES.items() if make().examples == "windows" and name != "bigram"]
TRAINED = [name for name, make in FAMILIES.items() if make().trained_by_gradient]


def batch(net, size=64):
    x = torch.randint(0, V, (size, BLOCK))
    if net.examples == "windows":
        return x, torch.randint(0, V, (size,))
    return x, torch.randint(0, V, (size, BLOCK))


@pytest.mark.parametrize("name", SEQUENCE)
def test_sequence_models_are_causal(name):
    net = FAMILIES[name]().eval()
    x = torch.randint(0, V, (4, BLOCK))
    for t in range(BLOCK - 1):
        changed = x.clone()
        changed[:, t + 1 :] = torch.randint(0, V, (4, BLOCK - t - 1))
        assert_close(net(changed)[:, : t + 1], net(x)[:, : t + 1])
        assert not torch.allclose(net(changed)[:, t + 1 :], net(x)[:, t + 1 :])


@pytest.mark.parametrize("name", WINDOWS)  # the bigram reads only the last token (tested below)
def test_window_models_see_their_whole_window(name):
    net = FAMILIES[name]().eval()
    x = torch.randint(0, V, (4, BLOCK))
    for t in range(BLOCK):
        changed = x.clone()
        changed[:, t] = (changed[:, t] + 1) % V
        assert not torch.allclose(net(changed), net(x))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_loss_at_init_is_near_uniform(name):
    net = FAMILIES[name]()
    loss = nll(net(batch(net, 512)[0]), batch(net, 512)[1])
    assert abs(loss.item() - math.log(V)) < 0.25


@pytest.mark.parametrize("name", TRAINED)
def test_every_parameter_gets_a_gradient_and_a_few_steps_lower_the_loss(name):
    net = FAMILIES[name]()
    x, y = batch(net, 16)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    first = nll(net(x), y)
    first.backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    for _ in range(30):
        optimizer.step()
        optimizer.zero_grad()
        loss = nll(net(x), y)
        loss.backward()
    assert loss.item() < first.item() - 0.5


def test_recurrent_state_continues_a_sequence():
    net = FAMILIES["lstm"]().eval()
    x = torch.randint(0, V, (3, BLOCK))
    states = net.initial_state(3)
    pieces = [net(x[:, :3], states), net(x[:, 3:], states)]
    assert_close(torch.cat(pieces, dim=1), net(x))


def test_transformer_refuses_a_sequence_longer_than_its_positions():
    net = FAMILIES["transformer"]()
    with pytest.raises(Exception, match="longer than block_size=8"):
        net(torch.zeros(1, BLOCK + 1, dtype=torch.long))


def test_bigram_table_is_the_smoothed_normalised_counts_and_its_loss_the_closed_form():
    net = Bigram(4, 1, smoothing=0.5)
    contexts = torch.tensor([[0], [1], [1], [2], [0], [3]])
    targets = torch.tensor([1, 2, 2, 0, 1, -1])  # the -1 is not counted
    net.fit_data(TensorDataset(contexts, targets))
    counts = torch.zeros(4, 4)
    for a, b in [(0, 1), (1, 2), (1, 2), (2, 0), (0, 1)]:
        counts[a, b] += 1
    probs = (counts + 0.5) / (counts + 0.5).sum(dim=1, keepdim=True)
    assert_close(net.log_probs().exp(), probs)
    keep = targets != -1
    closed_form = -probs[contexts[keep, 0], targets[keep]].log().mean()
    assert_close(nll(net(contexts), targets), closed_form)
    assert_close(F.softmax(net(torch.tensor([[3]])), -1), torch.full((1, 4), 0.25))  # unseen: uniform
    assert [name for name, _ in net.named_parameters()] == ["counts"]  # the table itself, set by counting


def test_bigram_reads_only_the_last_token():
    net = Bigram(V, BLOCK)
    net.fit_data(TensorDataset(*batch(net, 500)))
    x = torch.randint(0, V, (5, BLOCK))
    changed = x.clone()
    changed[:, :-1] = torch.randint(0, V, (5, BLOCK - 1))
    assert_close(net(changed), net(x))


def test_trimming_unreached_padding_leaves_the_loss_unchanged():
    from makemore.data.packing import trim

    net = FAMILIES["transformer"]().eval()
    x = torch.randint(0, V, (2, 4, BLOCK))
    y = torch.full((2, 4, BLOCK), -1)
    y[0, :, :3] = 1
    y[1, 2, :5] = 2
    for xb, yb, width in zip(x, y, (3, 5)):
        tx, ty = trim(xb, yb)
        assert ty.shape[1] == width
        assert_close(nll(net(tx), ty), nll(net(xb), yb))


def test_ensemble_trains_each_member_on_its_own_loss_and_evaluates_their_mixture():
    net = FAMILIES["ensemble"]()
    x, y = batch(net, 16)
    losses = [nll(member(x), y) for member in net.eval().members]
    assert_close(net.loss(x, y), torch.stack(losses).mean())
    sums = [nll(member(x), y, reduction="sum") for member in net.members]  # the DDP path's sums
    assert_close(net.loss(x, y, reduction="sum"), torch.stack(sums).mean())
    mixture = torch.stack([m(x).softmax(-1) for m in net.members]).mean(0)
    assert_close(net(x), mixture.log())  # the log of the mean distribution


@pytest.mark.parametrize(
    "members, problem",
    [
        ([], "at least one member"),
        ([{"class_path": "torch.nn.Linear"}], "not a makemore model"),
        ([{"class_path": "MLP"}, {"class_path": "Transformer"}], "all read windows or all read sequences"),
    ],
)
def test_ensemble_refuses_bad_members(members, problem):
    from makemore.errors import MakemoreError

    with pytest.raises(MakemoreError, match=problem):
        Ensemble(V, BLOCK, members)
