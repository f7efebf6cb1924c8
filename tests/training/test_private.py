"""The private Lightning and torch members fenced in makemore/training/private.py still exist
and do what the module says; the step count they keep is Lightning's own."""

import pytest
import torch

from makemore.training.private import MEMBERS, TORCH_MEMBERS, foreach_add, foreach_add_, foreach_lerp_

from ..conftest import tiny_fit_args


@pytest.mark.parametrize("owner, name", [(owner, name) for owner, names in MEMBERS.items() for name in names])
def test_the_private_member_is_still_there(owner, name):
    from lightning.pytorch.callbacks import ModelCheckpoint

    if owner is ModelCheckpoint:  # instances: some members are set in __init__
        holder = ModelCheckpoint()
    else:
        holder = owner(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    assert hasattr(holder, name), f"lightning renamed or removed {owner.__name__}.{name}: update private.py"


def test_global_step_counts_every_optimizer_step_of_a_block(words_file, tmp_path):
    from makemore.cli import run

    cli = run(tiny_fit_args(words_file, tmp_path, steps=35))  # blocks of 5: the last one cut to 35
    assert cli.trainer.global_step == 35
    assert cli.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.total.completed == 35


@pytest.mark.parametrize("name", TORCH_MEMBERS)
def test_the_private_torch_member_is_still_there(name):
    assert hasattr(torch, name), f"torch renamed or removed torch.{name}: update private.py"


def test_the_foreach_helpers_equal_their_loops():
    a, b = [torch.randn(3, 4), torch.randn(5)], [torch.randn(3, 4), torch.randn(5)]
    for got, want in zip(foreach_add(a, b, alpha=0.5), [x + 0.5 * y for x, y in zip(a, b)]):
        assert torch.equal(got, want)
    expected = [x + 2.0 * y for x, y in zip(a, b)]
    foreach_add_(a, b, alpha=2.0)
    assert all(torch.equal(x, y) for x, y in zip(a, expected))
    expected = [torch.lerp(x, y, 0.25) for x, y in zip(a, b)]
    foreach_lerp_(a, b, 0.25)
    assert all(torch.equal(x, y) for x, y in zip(a, expected))
