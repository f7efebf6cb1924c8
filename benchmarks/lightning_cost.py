"""What one ``training_step`` call costs in Lightning itself, apart from any net.

    OMP_NUM_THREADS=1 python benchmarks/lightning_cost.py --steps 3000 --rounds 3

A module with one 4-element parameter (its step costs almost nothing) trains through
``L.Trainer`` under automatic optimization, and through a plain loop (forward, ``zero_grad``,
``backward``, ``step``), with the same AdamW and the same ``DataLoader``. The Trainer runs bare
(no progress bar, logger, checkpoints or summary), then with the progress bar ``fit`` uses
(redrawn every 10 steps), then with that and a TensorBoard logger written every 50 steps. Each
line is the median over rounds of microseconds per step after ``--warmup`` untimed steps, in
this process, one thread; Lightning's cost is the difference from the plain loop. It bounds
from below what ``fit`` adds to a net's step, whatever the net (``docs/performance.md``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, Dataset


class Ones(Dataset):
    def __len__(self) -> int:
        return 10**7

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.ones(4)


class Tiny(L.LightningModule):
    def __init__(self, log_every: int = 0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.log_every = log_every

    def training_step(self, batch, batch_idx):
        loss = (self.w * batch).sum()
        if self.log_every and (self.global_step + 1) % self.log_every == 0:
            self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), foreach=True)


class Clock(L.Callback):
    """Seconds from the first step after the warm-up to the last step's end."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.first = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.start is None and trainer.global_step >= self.warmup:
            self.start, self.first = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()


def loader() -> DataLoader:
    return DataLoader(Ones(), batch_size=None)


def plain(steps: int, warmup: int) -> float:
    model = Tiny()
    optimizer = model.configure_optimizers()
    batches = iter(loader())
    for i in range(steps):
        if i == warmup:
            start = time.perf_counter()
        loss = model.training_step(next(batches), i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / (steps - warmup)


def trainer(kind: str, steps: int, warmup: int) -> float:
    clock = Clock(warmup)
    with tempfile.TemporaryDirectory() as root:
        callbacks = [clock] + ([TQDMProgressBar(refresh_rate=10)] if kind != "bare" else [])
        logger = TensorBoardLogger(root) if kind == "progress bar and logger" else False
        run = L.Trainer(
            max_steps=steps,
            default_root_dir=root,
            callbacks=callbacks,
            logger=logger,
            log_every_n_steps=50,
            enable_progress_bar=kind != "bare",
            enable_checkpointing=False,
            enable_model_summary=False,
        )
        run.fit(Tiny(log_every=50 if logger else 0), loader())
    return (clock.end - clock.start) / (steps - clock.first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="steps per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    kinds = ["plain loop", "bare", "progress bar", "progress bar and logger"]
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            run = plain if kind == "plain loop" else lambda s, w, k=kind: trainer(k, s, w)
            times[kind].append(run(args.steps, args.warmup) * 1e6)
    medians = {kind: statistics.median(us) for kind, us in times.items()}
    if args.json:
        result = {"threads": torch.get_num_threads(), "us_per_step": times, "median_us": medians}
        Path(args.json).write_text(json.dumps(result, indent=2))
    print("| loop | us per step | Lightning's cost (us) |")
    print("|---|---|---|")
    for kind in kinds:
        print(f"| {kind} | {medians[kind]:.0f} | {medians[kind] - medians['plain loop']:.0f} |")


if __name__ == "__main__":
    main()
