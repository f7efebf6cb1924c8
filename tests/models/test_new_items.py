"""NewItems: items seen in training get their measured repeat rate, new items the rest, and the
corrected distribution still factorises into normalised next-token predictions."""

import itertools
import math

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import TensorDataset

from makemore.errors import MakemoreError
from makemore.models import NewItems

V, T = 4, 5  # tokens 1..3 and the boundary token 0; items of up to 4 characters
NET = {"class_path": "makemore.models.Recurrent", "init_args": {"cell": "gru", "n_embd": 8, "n_hidden": 16}}
TRAIN = ["12", "12", "3", "31", "123", "2", "2", "1322"]
VAL = ["3", "11", "13", "2", "21", "12", "333"]


def targets(items: list[str]) -> torch.Tensor:
    y = torch.full((len(items), T), -1)
    for i, item in enumerate(items):
        ids = [int(c) for c in item] + [0]
        y[i, : len(ids)] = torch.tensor(ids)
    return y


def inputs(y: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1].clamp(min=0)], dim=1)


def log_prob(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each item's total log-probability, end token included."""
    per_token = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
    return per_token.masked_fill(y < 0, 0.0).sum(dim=1)


def fitted(power: float = 1.0, repeat_weight: float = 0.0) -> NewItems:
    net = NewItems(V, T, NET, power, repeat_weight, repeat_order=2)
    net.fit_data(TensorDataset(inputs(targets(TRAIN)), targets(TRAIN)))
    return net.eval()


def test_rates_are_the_training_items_kinds_left_one_out_smoothed():
    net = fitted()
    # each training item, left out, is seen by the rest one time fewer than the split holds it:
    # 3, 31, 123, 1322 are then new; the two 12s and the two 2s are seen once
    kinds = [4, 4, 0]
    assert_close(net.rates, (torch.tensor(kinds, dtype=torch.float64) + 0.5) / (len(TRAIN) + 1.5))
    assert net.seen_counts.sum().item() == len(TRAIN) and len(net.seen) == len(set(TRAIN))


@pytest.mark.parametrize("power, repeat_weight", [(1.0, 0.0), (0.4, 0.0), (0.4, 0.5)])
def test_each_item_gets_its_kinds_share_of_the_rates(power, repeat_weight):
    net = fitted(power, repeat_weight)
    every = ["".join(p) for n in range(T) for p in itertools.product("123", repeat=n)]
    y = targets(every)
    with torch.no_grad():
        corrected, plain = log_prob(net(inputs(y)), y).double(), log_prob(net.net(inputs(y)), y).double()
    times = torch.tensor([TRAIN.count(item) for item in every])
    score = dict(zip(map(tuple, net.seen.tolist()), net.seen_scores.tolist()))
    scores = torch.tensor([score.get(tuple(row), 0.0) for row in y.tolist()], dtype=torch.float64)
    log_w = power * plain + repeat_weight * scores
    log_z = torch.stack([log_w[times == k].logsumexp(0) for k in range(3)])  # Z_k
    seen_mass = plain[times > 0].exp().sum()
    rates = net.rates
    expected = torch.where(
        times > 0,
        rates[times].log() + log_w - log_z[times],  # r_k w / Z_k
        plain + (rates[0] / (1 - seen_mass)).log(),  # new: P r_0 / (1 - M)
    )
    assert_close(corrected, expected, atol=1e-5, rtol=0)
    # The seen items get exactly their kinds' rates: the mass left for new items is rates[0].
    assert corrected[times > 0].exp().sum().item() == pytest.approx(1 - rates[0].item(), abs=1e-5)


def test_every_prediction_is_a_distribution_and_causal():
    net = fitted()
    y = targets(["12", "1322", "3", "2113", "31"])
    x = inputs(y)
    with torch.no_grad():
        out = net(x)
        assert_close(out.logsumexp(-1), torch.zeros(x.shape), atol=1e-5, rtol=0)
        for t in range(T - 1):
            changed = x.clone()
            changed[:, t + 1 :] = torch.randint(1, V, (len(x), T - t - 1))
            assert_close(net(changed)[:, : t + 1], out[:, : t + 1])


def test_incremental_decoding_equals_full_recompute():
    net = fitted()
    x = inputs(targets(["12", "1322", "3", "2113", "31", ""]))
    with torch.no_grad():
        full = net(x)
        state = net.start_decoding(len(x))
        steps = torch.stack([net.decode_step(x[:, t : t + 1], state) for t in range(T)], dim=1)
    assert_close(steps, full, atol=1e-5, rtol=0)


def test_training_sees_the_plain_net_and_new_weights_are_taken_up():
    net = fitted()
    y = targets(TRAIN)
    x = inputs(y)
    with torch.no_grad():
        assert torch.equal(net.train()(x), net.net(x))
        before = net.eval()(x)
        for p in net.net.parameters():
            p.add_(0.1 * torch.randn_like(p))
        after, plain = net(x), net.net(x)
    assert not torch.allclose(before, after)
    # Seen twice ("12", "2"): the same shift for both, log(rate / mass of the twice-seen), with the new weights.
    twice = torch.tensor([item in ("12", "2") for item in TRAIN])
    shift = (log_prob(after, y) - log_prob(plain, y))[twice]
    mass = log_prob(plain, y)[twice].unique().exp().sum()
    assert_close(shift, torch.full_like(shift, math.log(net.rates[2].item() / mass.item())), atol=1e-5, rtol=0)


def test_a_checkpoints_state_rebuilds_the_same_model():
    net = fitted()
    fresh = NewItems(V, T, NET)
    fresh.load_state_dict(net.state_dict())
    x = inputs(targets(VAL))
    with torch.no_grad():
        assert_close(fresh.eval()(x), net(x))


def test_a_cast_module_recomputes_its_caches():
    net = fitted(0.4, 0.5)
    x = inputs(targets(VAL))
    with torch.no_grad():
        before = net(x)
        assert_close(net.double()(x).float(), before, atol=1e-5, rtol=0)
        assert_close(net.float()(x), before)


@pytest.mark.parametrize("optimizer", ["fused", "foreach"])
def test_an_optimizer_step_renews_the_cached_masses(optimizer):
    # A fused optimizer writes the weights without bumping their version counters: the cache
    # must notice new weights all the same.
    net = fitted(0.5, 0.25)
    x = inputs(targets(VAL))
    with torch.no_grad():
        net(x)  # masses cached for these weights
    params = list(net.net.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    torch.optim.AdamW(params, lr=0.1, **{optimizer: True}).step()
    fresh = NewItems(V, T, NET, 0.5, 0.25, repeat_order=2)
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert_close(net(x), fresh.eval()(x))


@pytest.mark.parametrize(
    "spec, problem",
    [
        ({"class_path": "makemore.models.MLP"}, "needs a sequence model"),
        ({"class_path": "torch.nn.LSTM"}, "not a makemore model"),
    ],
)
def test_refuses_a_net_it_cannot_correct(spec, problem):
    with pytest.raises(MakemoreError, match=problem):
        NewItems(V, T, spec)


@pytest.mark.parametrize("args, problem", [({"power": 1.5}, "power must lie in"), ({"repeat_order": 0}, "at least 1")])
def test_refuses_bad_settings(args, problem):
    with pytest.raises(MakemoreError, match=problem):
        NewItems(V, T, NET, **args)


def test_refuses_a_table_of_prefixes_larger_than_the_free_memory(monkeypatch):
    """A row of V entries per prefix: with 100,000 distinct characters, gigabytes."""
    net = fitted()
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("Memory", (), {"available": 100})())
    with pytest.raises(MakemoreError, match="prefixes x 4 characters needs"):
        net(inputs(targets(VAL)))


def test_refuses_an_empty_training_split():
    with pytest.raises(MakemoreError, match="needs training items"):
        NewItems(V, T, NET).fit_data(TensorDataset(inputs(targets([])), targets([])))


def test_fit_gives_the_net_and_its_weight_average_the_training_items(words_file, tmp_path):
    from makemore.cli import run
    from makemore.inference.loading import load

    from ..conftest import tiny_fit_args

    args = tiny_fit_args(words_file, tmp_path / "ck", config="configs/best.yaml", steps=10)
    cli = run([*args, "--model.ema_decay", "0.9"])
    train_targets = cli.datamodule.tensors("train")[1]
    for net in (cli.model.net, cli.model.eval_net):
        assert isinstance(net, NewItems)
        assert torch.equal(net.seen, torch.unique(train_targets, dim=0))
    loaded = load(tmp_path / "ck" / "best-1" / "last.ckpt").net  # the average, rebuilt from the file alone
    x, _ = cli.datamodule.tensors("val")
    with torch.no_grad():
        assert_close(loaded(x), cli.model.eval_net.eval()(x))
