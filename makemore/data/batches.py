"""Random training batches that depend on the seed and the optimizer step alone, as example ids."""

from __future__ import annotations

from collections.abc import Callable

import torch


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields ``(fused_steps, batch_size)`` tensors of example ids, drawn with replacement.

    Optimizer step ``s`` trains on row ``s % batches_per_epoch`` of a table drawn for epoch
    ``s // batches_per_epoch`` from a generator seeded with ``(seed, epoch)``: the batches
    depend on nothing but the seed and the step (not on ``fused_steps``, nor on how Lightning
    counts its epochs). Each iteration starts at the step ``current_step()`` reports and runs
    to the end of that epoch, so a run resumed at any step, mid-epoch or past the end of a
    finished run, trains on exactly what an unbroken run would.

    ``repeat=N`` (``--trainer.overfit_batches``): step ``s`` trains on the batch of step
    ``s % N`` instead, the same ``N`` batches over and over.

    Ranks: every rank draws the global ``(batches, batch_size * world_size)`` table and keeps
    its own columns, so ``world_size`` ranks with batch ``b`` see exactly the batches of one
    process with batch ``b * world_size``, split without overlap.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        batches_per_epoch: int,
        seed: int,
        fused_steps: int = 1,
        current_step: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        repeat: int = 0,
    ):
        self.fused_steps = fused_steps
        self.repeat = repeat
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.current_step = current_step
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return -(-self.batches_per_epoch // self.fused_steps)

    def epoch_table(self, epoch: int) -> torch.Tensor:
        """``(batches_per_epoch, batch_size)``: this rank's example ids for every step of ``epoch``."""
        generator = torch.Generator().manual_seed((self.seed + 1_000_003 * epoch) % 2**63)
        shape = (self.batches_per_epoch, self.batch_size * self.world_size)
        ids = torch.randint(self.num_examples, shape, generator=generator)
        return ids[:, self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def __iter__(self):
        epoch, done = divmod(self.current_step(), self.batches_per_epoch)
        if self.repeat:  # the run's first ``repeat`` batches, over and over
            steps = torch.arange(epoch * self.batches_per_epoch, (epoch + 1) * self.batches_per_epoch)
            table = self.epoch_table(0)[steps % self.repeat]
        else:
            table = self.epoch_table(epoch)
        yield from table[done:].split(self.fused_steps)


class ExampleIds(torch.utils.data.Dataset):
    """What the training loader yields: the sampler's example ids themselves. The examples are
    gathered where they are used (``NamesDataModule.gather_train``), on an accelerator if the
    run has one: only the ids travel there, not the batches."""

    def __init__(self, num_examples: int):
        self.num_examples = num_examples

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, ids: torch.Tensor) -> torch.Tensor:
        return ids
