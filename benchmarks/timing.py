"""A callback that times training steps only (no start-up, no validation)."""

from __future__ import annotations

import json
import time

import lightning as L
import torch


class StepTimer(L.Callback):
    """Prints ``{"steps": n, "seconds": t, "cpu_seconds": c}`` for the optimizer steps taken
    between the first timed training batch's start and the last one's end: wall-clock time, and
    the CPU time this process used meanwhile (all its threads).

    Args:
        warmup_steps: optimizer steps left untimed first (``torch.compile`` compiles, CUDA
            graphs are recorded); timing starts at the first step that begins after them.
    """

    def __init__(self, warmup_steps: int = 0):
        self.warmup_steps = warmup_steps
        self.start = self.end = self.cpu_start = self.cpu_end = None
        self.first_step = self.last_step = 0

    def _now(self, pl_module) -> float:
        if pl_module.device.type == "cuda":  # the GPU's queued work belongs to these steps
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.start is None and trainer.global_step >= self.warmup_steps:
            self.first_step, self.start, self.cpu_start = trainer.global_step, self._now(pl_module), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.start is not None:
            self.last_step, self.end, self.cpu_end = trainer.global_step, self._now(pl_module), time.process_time()

    def on_fit_end(self, trainer, pl_module):
        if self.start is None:
            raise RuntimeError(f"no step after the {self.warmup_steps} warm-up steps: train for more steps")
        steps, seconds, cpu = self.last_step - self.first_step, self.end - self.start, self.cpu_end - self.cpu_start
        print(json.dumps({"steps": steps, "seconds": seconds, "cpu_seconds": cpu}))
