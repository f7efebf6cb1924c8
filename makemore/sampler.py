"""Random training batches drawn from a seed and the epoch number alone."""

from __future__ import annotations

import torch


class EpochBatchSampler(torch.utils.data.Sampler):
    """Yields ``(fused_steps, batch_size)`` tensors of example ids, drawn with replacement,
    ``batches_per_epoch`` batches an epoch. The ids do not depend on ``fused_steps``.

    Epoch ``e`` draws from a generator seeded with ``(seed, e)``, so the order depends on
    nothing but the seed and the epoch: a resumed run sees the batches an unbroken one would.
    Lightning calls ``set_epoch`` before every epoch.
    """

    def __init__(self, num_examples: int, batch_size: int, batches_per_epoch: int, seed: int, fused_steps: int = 1):
        self.fused_steps = fused_steps
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.batches_per_epoch // self.fused_steps)

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed + 1_000_003 * self.epoch) % 2**63)
        ids = torch.randint(self.num_examples, (self.batches_per_epoch, self.batch_size), generator=generator)
        yield from ids.split(self.fused_steps)
