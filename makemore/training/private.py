"""The private Lightning and torch members ``fit`` relies on, fenced in this one module.

``CharLM`` trains a block of optimizer steps per ``training_step`` call (manual optimization).
Two things have no public Lightning API there:
- advancing Lightning's optimizer-step counter (``global_step``) without the per-step hooks of
  ``LightningOptimizer.step``, which cost more than a step of these nets;
- rewriting ``last.ckpt`` between validations (``RunCheckpoint``), which ``ModelCheckpoint``
  only does when it also saves a new best checkpoint.

And torch's ``_foreach`` operations, which update a list of tensors in one call (one kernel
launch per list on a GPU, where a Python loop launches one per tensor): the lecture's SGD and
the weight average use them. torch's own optimizers are built on them, but their names are
private. A CUDA-graphed step (``makemore.training.cuda_graph``) reads its learning rate and
weight-average weight from device tensors, which ``_foreach_mul`` takes without a host sync.

The tests stand in for a CUDA graph on a CPU by recording a step's operations with torch's
``TorchDispatchMode`` (``tests/training/graph_stand_in.py``), public in use but in a private
module, and refuse the operators that wait for the host, whose names start with an underscore.

Written for lightning 2.5.5 to 2.6 and torch 2 from 2.5 (``pyproject.toml`` bounds both);
``tests/training/test_private.py`` fails loudly if any of these members changes.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: F401  (for the tests' stand-in)

MEMBERS = {
    LightningOptimizer: ("_on_before_step", "_on_after_step"),
    ModelCheckpoint: (
        "_last_global_step_saved",
        "_save_last_checkpoint",
        "_monitor_candidates",
        "_should_skip_saving_checkpoint",
        "_should_save_on_train_epoch_end",
    ),
}


def host_sync_operators() -> set:
    """The aten operators that read a value back to the host (``.item()``, ``bool(t)``, ``nonzero``):
    a CUDA graph cannot capture them."""
    aten = torch.ops.aten
    return {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default}


TORCH_MEMBERS = ("_foreach_add", "_foreach_add_", "_foreach_lerp_", "_foreach_sub", "_foreach_mul", "_foreach_mul_")


def foreach_add(tensors: list, others: list, alpha: float = 1.0) -> list:
    """``[t + alpha * o for t, o in zip(tensors, others)]``."""
    return torch._foreach_add(tensors, others, alpha=alpha)


def foreach_add_(tensors: list, others: list, alpha: float = 1.0) -> None:
    """``t += alpha * o`` for each pair, in place."""
    torch._foreach_add_(tensors, others, alpha=alpha)


def foreach_lerp_(tensors: list, ends: list, weight: float) -> None:
    """``t += weight * (e - t)`` for each pair, in place."""
    torch._foreach_lerp_(tensors, ends, weight)


def foreach_sub(tensors: list, others: list) -> list:
    """``[t - o for t, o in zip(tensors, others)]``."""
    return torch._foreach_sub(tensors, others)


def foreach_mul(tensors: list, factor: torch.Tensor) -> list:
    """``[t * factor for t in tensors]``, ``factor`` a one-element tensor read on the device."""
    return torch._foreach_mul(tensors, factor)


def foreach_mul_(tensors: list, factor: torch.Tensor) -> None:
    """``t *= factor`` for each, in place; ``factor`` a one-element tensor read on the device."""
    torch._foreach_mul_(tensors, factor)


def count_optimizer_step(optimizer: LightningOptimizer) -> None:
    """One more optimizer step in Lightning's count, as ``LightningOptimizer.step`` would add."""
    optimizer._on_before_step()
    optimizer._on_after_step()


def write_last(callback: ModelCheckpoint, trainer, keep_step_unsaved: bool = False) -> None:
    """Rewrite ``last.ckpt`` now. ``keep_step_unsaved``: a validation later at this same step
    must still save its best and last checkpoints."""
    saved_step = callback._last_global_step_saved
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
    if keep_step_unsaved:
        callback._last_global_step_saved = saved_step


def last_saved_step(callback: ModelCheckpoint) -> int:
    return callback._last_global_step_saved


def skips_saving(callback: ModelCheckpoint, trainer) -> bool:
    """Whether Lightning would save nothing now (a dev run, sanity checking, this step saved)."""
    return callback._should_skip_saving_checkpoint(trainer)


def saves_at_epoch_end(callback: ModelCheckpoint, trainer) -> bool:
    return callback._should_save_on_train_epoch_end(trainer)
