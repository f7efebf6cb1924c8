"""A callback that times training steps only (no start-up, no validation)."""

from __future__ import annotations

import json
import time

import lightning as L


class StepTimer(L.Callback):
    """Prints ``{"steps": n, "seconds": t}`` for the optimizer steps taken between the first
    training batch's start and the last one's end."""

    def __init__(self):
        self.start = self.end = None
        self.first_step = self.last_step = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.start is None:
            self.first_step, self.start = trainer.global_step, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.last_step, self.end = trainer.global_step, time.perf_counter()

    def on_fit_end(self, trainer, pl_module):
        print(json.dumps({"steps": self.last_step - self.first_step, "seconds": self.end - self.start}))
