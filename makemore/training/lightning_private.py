"""The private Lightning members ``fit`` relies on, fenced in this one module.

``CharLM`` trains a block of optimizer steps per ``training_step`` call (manual optimization).
Two things have no public API there:
- advancing Lightning's optimizer-step counter (``global_step``) without the per-step hooks of
  ``LightningOptimizer.step``, which cost more than a step of these nets;
- rewriting ``last.ckpt`` between validations (``RunCheckpoint``), which ``ModelCheckpoint``
  only does when it also saves a new best checkpoint.

Written for lightning 2.5.5 to 2.6 (``pyproject.toml`` bounds it);
``tests/training/test_lightning_private.py`` fails loudly if any of these members changes.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.core.optimizer import LightningOptimizer

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
