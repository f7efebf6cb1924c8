"""A callback that times training steps only (no start-up, no validation)."""

from __future__ import annotations

import json
import time

import lightning as L


class StepTimer(L.Callback):
    """Prints ``{"steps": n, "seconds": t, "cpu_seconds": c}`` for the optimizer steps taken
    between the first training batch's start and the last one's end: wall-clock time, and the
    CPU time this process used meanwhile (all its threads)."""

    def __init__(self):
        self.start = self.end = self.cpu_start = self.cpu_end = None
        self.first_step = self.last_step = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.start is None:
            self.first_step, self.start, self.cpu_start = trainer.global_step, time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.last_step, self.end, self.cpu_end = trainer.global_step, time.perf_counter(), time.process_time()

    def on_fit_end(self, trainer, pl_module):
        steps, seconds, cpu = self.last_step - self.first_step, self.end - self.start, self.cpu_end - self.cpu_start
        print(json.dumps({"steps": steps, "seconds": seconds, "cpu_seconds": cpu}))
