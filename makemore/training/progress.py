"""The progress bar of ``fit`` in optimizer steps, not ``training_step`` calls.

Lightning's bar counts calls, and each call here trains a block of ``data.fused_steps`` steps,
so ``13/50`` would mean 2,600 steps. This one counts the steps of the epoch, up to
``data.batches_per_epoch`` or the run's ``max_steps``.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._count_from(trainer)  # a resume inside an epoch gets no on_train_epoch_start

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._count_from(trainer)

    def _count_from(self, trainer) -> None:
        """The bar counts the steps from here to the end of this epoch (or of the run)."""
        self._epoch_start = trainer.global_step
        steps = trainer.datamodule.batches_per_epoch
        left = trainer.max_steps - trainer.global_step if trainer.max_steps >= 0 else steps
        if self.train_progress_bar is not None:
            self.train_progress_bar.total = min(steps - trainer.global_step % steps, left)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        if bar is not None and not bar.disable:
            bar.n = trainer.global_step - self._epoch_start
            bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes the bar
