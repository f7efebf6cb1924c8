"""ModelCheckpoint whose ``last.ckpt`` follows every save point.

Lightning refreshes ``last.ckpt`` only when it also saved a new best checkpoint, so after a
validation that did not improve, ``last`` would lag behind and a resume would repeat work.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoints by the monitored metric, and ``last.ckpt`` always current."""

    def _refresh_last(self, trainer) -> None:
        # Skipped when this step was already saved (a new best also rewrote last.ckpt).
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)
