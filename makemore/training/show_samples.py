"""During ``fit``: a few samples every N steps, printed and logged to TensorBoard as text."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from makemore.checks import positive
from makemore.errors import MakemoreError

MAX_SAMPLES = 1_000


class SampleCallback(L.Callback):
    """Show how the model's samples improve as it trains.

    Args:
        every_n_steps: sample after every this many optimizer steps; 0 turns it off.
        num_samples: items per showing.
    """

    def __init__(self, every_n_steps: int = 10_000, num_samples: int = 5):
        if every_n_steps < 0:
            raise MakemoreError(f"--samples.every_n_steps must be >= 0 (0: off), got {every_n_steps}")
        # One line of a log, sampled at once: a billion would be a billion rows of logits.
        if positive("num_samples", num_samples, "--samples.") > MAX_SAMPLES:
            raise MakemoreError(f"--samples.num_samples must be at most {MAX_SAMPLES:,}, got {num_samples:,}")
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self._shown_at = 0

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, every = trainer.global_step, self.every_n_steps
        if not every or step // every == self._shown_at // every:
            return
        self._shown_at = step
        # Its own generator: sampling must not move the training's random state.
        generator = torch.Generator(device=pl_module.device).manual_seed(step)
        items = pl_module.generate(self.num_samples, generator=generator)  # in eval mode
        rank_zero_info(f"samples at step {step}: " + ", ".join(items))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("samples", "  \n".join(items), step)
