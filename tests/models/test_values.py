"""A family's sizes and rates are checked where the family receives them: a bad one is one line
naming the option as the user writes it, never a net that cannot see its input or a traceback
from deep inside torch; and a net too large for the machine is refused before it is allocated."""

import math

import pytest
import torch

from makemore.errors import MakemoreError
from makemore.models import MLP, BoW, Ensemble, NewItems, Recurrent, Transformer, WaveNet, families
from makemore.models.base import check_fits_in_memory

V, BLOCK = 11, 8
LSTM = {"class_path": "Recurrent", "init_args": {"cell": "lstm", "n_embd": 8, "n_hidden": 16}}

# (family, init_args, a fragment of the message)
BAD = {
    "MLP n_embd 0": (MLP, {"n_embd": 0}, "--model.net.init_args.n_embd must be a whole number of at least 1, got 0"),
    "MLP n_hidden -5": (MLP, {"n_hidden": -5}, "--model.net.init_args.n_hidden must be"),
    "MLP n_hidden 2.5": (MLP, {"n_hidden": 2.5}, "--model.net.init_args.n_hidden must be"),
    "WaveNet n_hidden 0": (WaveNet, {"n_hidden": 0}, "--model.net.init_args.n_hidden must be"),
    "WaveNet merge of negatives": (WaveNet, {"merge": [-2, -4]}, "--model.net.init_args.merge[0] must be"),
    "WaveNet merge not a list": (WaveNet, {"merge": 8}, "--model.net.init_args.merge must be a list"),
    "BoW n_embd 0": (BoW, {"n_embd": 0}, "--model.net.init_args.n_embd must be"),
    "Recurrent n_layer 0": (Recurrent, {"n_layer": 0}, "--model.net.init_args.n_layer must be"),
    "Recurrent cell": (Recurrent, {"cell": "tree"}, "--model.net.init_args.cell must be one of rnn, lstm, gru"),
    "Recurrent dropout 1.5": (Recurrent, {"dropout": 1.5}, "--model.net.init_args.dropout must be a probability"),
    "Recurrent dropout nan": (Recurrent, {"dropout": math.nan}, "--model.net.init_args.dropout must be"),
    "Recurrent weight_drop -0.1": (Recurrent, {"weight_drop": -0.1}, "--model.net.init_args.weight_drop must be"),
    "Recurrent token_drop 1": (Recurrent, {"token_drop": 1.0}, "--model.net.init_args.token_drop must be"),
    "Transformer n_head 0": (Transformer, {"n_head": 0}, "--model.net.init_args.n_head must be"),
    "Transformer n_embd 0": (Transformer, {"n_embd": 0}, "--model.net.init_args.n_embd must be"),
    "Transformer n_layer 0": (Transformer, {"n_layer": 0}, "--model.net.init_args.n_layer must be"),
    "Transformer dropout 2": (Transformer, {"dropout": 2.0}, "--model.net.init_args.dropout must be"),
    "Bigram smoothing -1": (families()["Bigram"], {"smoothing": -1.0}, "--model.net.init_args.smoothing must lie"),
    "Bigram smoothing inf": (families()["Bigram"], {"smoothing": math.inf}, "smoothing must be a finite number"),
    "Ensemble member's size": (
        Ensemble,
        {"members": [LSTM, {"class_path": "Recurrent", "init_args": {"n_hidden": 0}}]},
        "--model.net.init_args.members[1].init_args.n_hidden must be",
    ),
    "Ensemble member's unknown option": (
        Ensemble,
        {"members": [{"class_path": "Recurrent", "init_args": {"n_hiden": 8}}]},
        "Ensemble member Recurrent has no option 'n_hiden'",
    ),
    "Ensemble member not a mapping": (Ensemble, {"members": ["Recurrent"]}, "must be a mapping"),
    "Ensemble members not a list": (Ensemble, {"members": LSTM}, "a list of at least one member"),
    "NewItems' net's member": (
        NewItems,
        {"net": {"class_path": "Ensemble", "init_args": {"members": [{**LSTM, "init_args": {"dropout": 1.0}}]}}},
        "--model.net.init_args.net.init_args.members[0].init_args.dropout must be",
    ),
    "NewItems power nan": (NewItems, {"net": LSTM, "power": math.nan}, "--model.net.init_args.power must be"),
    "NewItems repeat_weight inf": (NewItems, {"net": LSTM, "repeat_weight": math.inf}, "repeat_weight must be"),
    "NewItems repeat_order past the items": (NewItems, {"net": LSTM, "repeat_order": 10**9}, "repeat_order=1000000000"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_value_is_one_line_naming_the_option(name):
    family, init_args, message = BAD[name]
    with pytest.raises(MakemoreError, match=None) as caught:
        family(V, BLOCK, **init_args)
    assert message in str(caught.value)


WRAPPED = {
    "Ensemble": {"members": [LSTM, {"class_path": "Transformer", "init_args": {"n_layer": 1, "n_embd": 16}}]},
    "NewItems": {"net": LSTM},
}


@pytest.mark.parametrize("name", sorted(n for n, f in families().items() if f.__module__.startswith("makemore.")))
def test_every_family_builds_on_the_meta_device_without_drawing_random_numbers(name):
    family = families()[name]
    before = torch.get_rng_state()
    with torch.device("meta"):
        net = family(V, BLOCK, **WRAPPED.get(name, {}))
    assert torch.equal(torch.get_rng_state(), before)  # the real net built next draws what it always did
    assert {t.device.type for t in [*net.parameters(), *net.buffers()]} == {"meta"}


def test_a_net_larger_than_the_free_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr("psutil.virtual_memory", lambda: type("Memory", (), {"available": 10**9})())
    # 108e9 weights (80 in, 27 out per hidden unit): 432 GB, 4 copies; never allocated
    with pytest.raises(MakemoreError, match=r"MLP needs 1,728.0 GB for its weights and training state"):
        check_fits_in_memory(MLP, 27, 5, {"n_hidden": 10**9}, copies=4)
    with pytest.raises(MakemoreError, match="too large to count"):  # past int64: torch cannot count it
        check_fits_in_memory(MLP, 27, 5, {"n_hidden": 10**30})
    check_fits_in_memory(MLP, 27, 5, {"n_hidden": 256}, copies=4)  # 0.4 MB: fine
