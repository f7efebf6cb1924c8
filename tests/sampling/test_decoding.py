"""Incremental decoding gives the same next-token distributions as full recompute, in every family."""

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import TensorDataset

from makemore.models import Bigram
from makemore.sampling import decoding

from ..models.test_families import BLOCK, FAMILIES, V


def families():
    nets = {name: make() for name, make in FAMILIES.items()}
    bigram = Bigram(V, BLOCK)
    bigram.fit_data(TensorDataset(torch.randint(0, V, (300, BLOCK)), torch.randint(0, V, (300,))))
    return {**nets, "bigram": bigram}


@pytest.mark.parametrize("name", [*FAMILIES, "bigram"])
def test_incremental_equals_full_recompute(name):
    net = families()[name].eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(3):
            prefix_length = int(torch.randint(0, 4, (1,), generator=g))
            sequence = torch.randint(1, V, (5, 1 + prefix_length), generator=g)
            sequence[:, 0] = 0  # every item starts with the boundary token
            state = net.start_decoding(5)
            logits = net.decode_step(sequence, state)  # the prefix in one call
            length = BLOCK + 4 if net.examples == "windows" else BLOCK  # windows slide past their context
            for _ in range(length - 1 - prefix_length):
                assert_close(logits.log_softmax(-1), decoding.recompute(net, sequence).log_softmax(-1))
                nxt = torch.randint(1, V, (5, 1), generator=g)
                sequence = torch.cat([sequence, nxt], dim=1)
                logits = net.decode_step(nxt, state)
            assert_close(logits.log_softmax(-1), decoding.recompute(net, sequence).log_softmax(-1))
