"""Random training batches that depend on the seed and the batch's number alone, and a loader
that resumes where a checkpoint left it (Lightning's ``state_dict`` protocol for loaders)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TrainBatches(Dataset):
    """Item ``i`` is training batch ``i`` of the run: ``batch_size`` example ids drawn with
    replacement. Batch ``i`` is row ``i % batches_per_epoch`` of a table drawn for epoch
    ``i // batches_per_epoch`` from a generator seeded with ``(seed, epoch)``, so a batch depends
    on nothing but the seed and its number. Its length is one epoch: Lightning's count of
    batches per epoch (``overfit_batches``, ``limit_train_batches`` and ``val_check_interval``
    cut it as they cut any loader's).

    Ranks: every rank draws the global ``(batches, batch_size * world_size)`` table and keeps its
    own columns, so ``world_size`` ranks with batch ``b`` see exactly the batches of one process
    with batch ``b * world_size``, split without overlap.
    """

    def __init__(self, num_examples: int, batch_size: int, batches_per_epoch: int, seed: int, rank=0, world_size=1):
        self.num_examples, self.batch_size, self.batches_per_epoch = num_examples, batch_size, batches_per_epoch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._table = (None, None)  # (epoch, its table): one epoch's draw is reused batch by batch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def epoch_table(self, epoch: int) -> torch.Tensor:
        """``(batches_per_epoch, batch_size)``: this rank's example ids for every batch of ``epoch``."""
        if self._table[0] != epoch:
            generator = torch.Generator().manual_seed((self.seed + 1_000_003 * epoch) % 2**63)
            shape = (self.batches_per_epoch, self.batch_size * self.world_size)
            ids = torch.randint(self.num_examples, shape, generator=generator)
            self._table = (epoch, ids[:, self.rank * self.batch_size : (self.rank + 1) * self.batch_size])
        return self._table[1]

    def __getitem__(self, i: int) -> torch.Tensor:
        epoch, row = divmod(int(i), self.batches_per_epoch)
        return self.epoch_table(epoch)[row]


class RunOrder(Sampler):
    """Batch numbers in the order a run trains on them: each epoch's iteration continues from
    the last batch handed out, for one epoch's worth of batches. Its state is that count, so a
    run resumed from a checkpoint (which holds it) trains on exactly what an unbroken run would,
    mid-epoch included."""

    def __init__(self, batches_per_epoch: int):
        self.batches_per_epoch = batches_per_epoch
        self.next_batch = 0

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        for _ in range(self.batches_per_epoch):
            self.next_batch += 1
            yield self.next_batch - 1

    def state_dict(self) -> dict:
        return {"next_batch": self.next_batch}

    def load_state_dict(self, state: dict) -> None:
        self.next_batch = int(state["next_batch"])


class ResumableLoader(DataLoader):
    """A ``DataLoader`` whose position is saved in checkpoints: Lightning saves and restores the
    state of any training loader that has ``state_dict`` and ``load_state_dict``. A loader whose
    sampler Lightning replaced (``overfit_batches`` reads the first batches, in order) has none."""

    def state_dict(self) -> dict:
        return self.sampler.state_dict() if isinstance(self.sampler, RunOrder) else {}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.sampler, RunOrder) and state:
            self.sampler.load_state_dict(state)
