"""Random training batches drawn from a seed and the epoch number alone."""

from __future__ import annotations

import torch


class EpochBatchSampler(torch.utils.data.Sampler):
    """Yields ``(fused_steps, batch_size)`` tensors of example ids, drawn with replacement,
    ``batches_per_epoch`` batches an epoch. The ids do not depend on ``fused_steps``.

    Epoch ``e`` draws from a generator seeded with ``(seed, e)``, so the order depends on
    nothing but the seed and the epoch. Lightning calls ``set_epoch`` before every epoch.

    Exact resume: ``start_step`` is the optimizer step training resumes at; the epoch that
    holds it skips the batches already trained on, so a resumed run sees what an unbroken one
    would. Ranks: every rank draws the global ``(batches, batch_size * world_size)`` ids and
    keeps its own columns, so ``world_size`` ranks with batch ``b`` see exactly the batches of
    one process with batch ``b * world_size``, split without overlap.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        batches_per_epoch: int,
        seed: int,
        fused_steps: int = 1,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.fused_steps = fused_steps
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.start_step = start_step
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.batches_per_epoch // self.fused_steps)

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed + 1_000_003 * self.epoch) % 2**63)
        shape = (self.batches_per_epoch, self.batch_size * self.world_size)
        ids = torch.randint(self.num_examples, shape, generator=generator)
        ids = ids[:, self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        done = self.start_step - self.epoch * self.batches_per_epoch
        if 0 < done < self.batches_per_epoch:  # resuming inside this epoch
            ids = ids[done:]
        yield from ids.split(self.fused_steps)
