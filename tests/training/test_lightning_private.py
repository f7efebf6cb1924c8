"""The private Lightning members fenced in makemore/training/lightning_private.py still exist,
and the step count they keep is Lightning's own."""

import pytest
import torch

from makemore.training.lightning_private import MEMBERS

from ..conftest import tiny_fit_args


@pytest.mark.parametrize("owner, name", [(owner, name) for owner, names in MEMBERS.items() for name in names])
def test_the_private_member_is_still_there(owner, name):
    from lightning.pytorch.callbacks import ModelCheckpoint

    if owner is ModelCheckpoint:  # instances: some members are set in __init__
        holder = ModelCheckpoint()
    else:
        holder = owner(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    assert hasattr(holder, name), f"lightning renamed or removed {owner.__name__}.{name}: update lightning_private.py"


def test_global_step_counts_every_optimizer_step_of_a_block(words_file, tmp_path):
    from makemore.cli import run

    cli = run(tiny_fit_args(words_file, tmp_path, steps=35))  # blocks of 5: the last one cut to 35
    assert cli.trainer.global_step == 35
    assert cli.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.total.completed == 35
