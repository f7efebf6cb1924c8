"""The LightningDataModule: a file's items, their vocabulary and split, batches of examples."""

from __future__ import annotations

import random
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from makemore.data.batches import ResumableLoader, RunOrder, TrainBatches
from makemore.data.items import BUNDLED_DATASET, read_items, split_items
from makemore.data.tokens import Examples, TokenSplit
from makemore.data.vocab import Vocabulary
from makemore.digests import file_fingerprint
from makemore.errors import MakemoreError

# Logits an evaluation batch may hold (128 MB in float32): a vocabulary of 100,000 characters
# would otherwise make data.eval_tokens' 32,768 tokens some 13 GB of logits. Names (27 tokens)
# stay far below it, so their batches, and the losses published for them, are unchanged.
EVAL_LOGITS = 2**25


class NamesDataModule(L.LightningDataModule):
    """Reads the items, builds the vocabulary and the 80/10/10 split when constructed.

    The vocabulary (``chars``) and ``block_size`` exist right after construction, so the CLI
    can link them into the model.

    Args:
        path: UTF-8 text file, one item per line; default: the bundled US baby names of 2015.
        examples: ``windows`` (context -> next token) or ``sequences`` (whole items); unset:
            what the model reads (the CLI sets it from the net).
        block_size: context length of window examples (default 8); for sequences, the padded
            length (default: longest item + 1).
        batch_size: training examples per step, per process (DDP: the global batch is this times the ranks).
        batches_per_epoch: random batches per epoch; validation and checkpoints run at each
            epoch's end, so this is the validation interval in batches (optimizer steps when
            no gradients are accumulated).
        eval_tokens: tokens per batch when evaluating a split: that many window examples, or
            that many over ``block_size`` items of a sequence batch (so long items cost memory
            in proportion, not by the item).
        val_items: the validations during ``fit`` evaluate at most this many validation items,
            the same ones each time (drawn by ``split_seed``), so a large file does not make
            each one cost minutes; 0: all; a number below 1: that share of them (at least one).
            ``validate``, ``test`` and the end of ``fit`` evaluate the whole split.
        max_item_length: for sequence examples, the longest item accepted: every sequence is
            as long as the longest item, so one outlier would make every step pay for it.
        split_seed: seed of the shuffle before the split (42: the lecture's split).
        train_fraction: share of items for training.
        val_fraction: share of items for validation; the test split gets the rest.
    """

    def __init__(
        self,
        path: str | None = None,
        examples: Literal["windows", "sequences"] | None = None,
        block_size: int | None = None,
        batch_size: int = 32,
        batches_per_epoch: int = 10_000,
        eval_tokens: int = 32_768,
        split_seed: int = 42,
        train_fraction: float = 0.8,
        val_fraction: float = 0.1,
        max_item_length: int = 100,
        val_items: int | float = 50_000,
    ):
        super().__init__()
        # Saved in checkpoints: predict finds the data and its split (block_size is the model's).
        self.save_hyperparameters(ignore=["block_size"])
        if not (0 < train_fraction and 0 <= val_fraction and train_fraction + val_fraction <= 1):
            raise MakemoreError(
                f"data.train_fraction={train_fraction} and data.val_fraction={val_fraction} must be >= 0 "
                "and add up to at most 1"
            )
        for name, value in (("batch_size", batch_size), ("batches_per_epoch", batches_per_epoch)):
            if value < 1:
                raise MakemoreError(f"data.{name} must be at least 1, got {value}")
        if eval_tokens < 1:
            raise MakemoreError(f"data.eval_tokens must be at least 1, got {eval_tokens}")
        self.path = str(path or BUNDLED_DATASET)
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.eval_tokens = eval_tokens
        self.items = read_items(self.path)
        self.fingerprint = file_fingerprint(self.path)  # checkpoints record which file trained them
        self.vocab = Vocabulary.from_items(self.items)
        self.chars = self.vocab.chars
        longest = max(len(item) for item in self.items)
        self.examples = examples = examples or "windows"
        if examples == "windows":
            block_size = 8 if block_size is None else block_size
            if block_size < 1:
                raise MakemoreError(f"data.block_size must be >= 1 for window examples, got {block_size}")
            self.block_size = block_size
        else:
            if longest > max_item_length:
                raise MakemoreError(_too_long(self.items, max_item_length, self.path))
            if block_size is not None and block_size < longest + 1:
                raise MakemoreError(
                    f"data.block_size={block_size} is shorter than the longest item of {self.path} plus "
                    f"the end token ({longest + 1}); raise it or leave it unset"
                )
            if block_size is not None and block_size > max_item_length + 1:  # every sequence is this wide
                raise MakemoreError(
                    f"data.block_size={block_size} pads every sequence past data.max_item_length={max_item_length} "
                    "plus the end token; lower it or leave it unset"
                )
            self.block_size = block_size or longest + 1
        # As resolved; a path of None is the bundled file.
        self.hparams.update(examples=self.examples, data_file=self.fingerprint)
        parts = split_items(self.items, split_seed, train_fraction, val_fraction)
        self.splits = dict(zip(("train", "val", "test"), parts))
        if val_items < 0 or isinstance(val_items, float) and not (0 < val_items < 1 or val_items.is_integer()):
            raise MakemoreError(
                f"data.val_items must be a count >= 0 (0: all) or a share between 0 and 1, got {val_items}"
            )
        if isinstance(val_items, float):
            val_items = max(1, round(val_items * len(parts[1]))) if val_items < 1 else int(val_items)
        if 0 < val_items < len(parts[1]):  # the same subset every validation, in split order
            chosen = sorted(random.Random(split_seed).sample(range(len(parts[1])), val_items))
            self.splits["val_during_fit"] = [parts[1][i] for i in chosen]
        if not all(parts):
            counts = "/".join(str(len(part)) for part in parts)
            raise MakemoreError(
                f"{len(self.items)} item{'s' * (len(self.items) != 1)} give {counts} for train/val/test; need at "
                "least one in each: add items or change --data.train_fraction / --data.val_fraction"
            )
        examples_in_train = len(parts[0]) if examples == "sequences" else sum(len(item) + 1 for item in parts[0])
        if batch_size > examples_in_train:
            raise MakemoreError(
                f"data.batch_size={batch_size} is more than the {examples_in_train:,} training examples "
                f"({examples}); lower --data.batch_size"
            )
        self._tokens: dict[str, TokenSplit] = {}
        self._train_on: dict[torch.device, Examples] = {}  # the training split on each device used
        self.sampling_seed = torch.initial_seed()  # the run's seed (LightningCLI seeds before this)

    def dataset(self, split: str) -> Examples:
        """The split's examples, gathered batch by batch from its tokens (encoded on first use)."""
        if split not in self._tokens:
            self._tokens[split] = TokenSplit.encode(self.splits[split], self.vocab)
        return Examples(self._tokens[split], self.examples, self.block_size)

    def gather_train(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training examples ``ids`` (what the training loader yields), gathered on the device
        the ids are on: the split's tokens are copied to an accelerator once, and every batch is
        built there."""
        if ids.device not in self._train_on:
            dataset = self.dataset("train")
            if self.examples == "windows":
                dataset.split.positions()  # computed here, on the host, and moved with the tokens
            self._train_on[ids.device] = Examples(dataset.split.to(ids.device), self.examples, self.block_size)
        return self._train_on[ids.device][ids]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # Training batches travel as example ids and are gathered where the split's tokens are.
        if isinstance(batch, torch.Tensor):  # example ids, on the device now
            return self.gather_train(batch)
        return batch

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All of the split's examples at once, as ``(inputs, targets)``."""
        return self.dataset(split)[:]

    def _rank_and_world(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        rank, world = self._rank_and_world()
        batches = TrainBatches(len(dataset), self.batch_size, self.batches_per_epoch, self.sampling_seed, rank, world)
        # Its own generator: iterating must not draw from the global RNG (dropout's), or a
        # resumed run, which starts its loaders at other moments, would see different masks.
        order = RunOrder(self.batches_per_epoch)
        return ResumableLoader(batches, batch_size=None, sampler=order, generator=torch.Generator())

    def eval_dataloader(self, split: str) -> DataLoader:
        """The whole split in order, in chunks of ``eval_tokens`` tokens (fewer when a large
        vocabulary would make their logits exceed ``EVAL_LOGITS``); with several ranks each
        evaluates its own contiguous share (no example twice) and the metric adds them up."""
        dataset = self.dataset(split)
        rank, world = self._rank_and_world()
        first, last = len(dataset) * rank // world, len(dataset) * (rank + 1) // world
        tokens = min(self.eval_tokens, EVAL_LOGITS // self.vocab.size)
        size = max(1, tokens if self.examples == "windows" else tokens // self.block_size)
        chunks = [slice(i, min(i + size, last)) for i in range(first, last, size)]
        return DataLoader(Chunks(dataset, chunks), batch_size=None, generator=torch.Generator())

    @property
    def validates_a_subset(self) -> bool:
        return "val_during_fit" in self.splits

    def val_dataloader(self) -> DataLoader:
        fitting = self.trainer is not None and self.trainer.state.fn == "fit"
        return self.eval_dataloader("val_during_fit" if fitting and self.validates_a_subset else "val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def state_dict(self) -> dict:
        # A resumed run draws its batches from the seed the run started with.
        return {"sampling_seed": self.sampling_seed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.sampling_seed = state_dict.get("sampling_seed", self.sampling_seed)


def _too_long(items: list[str], limit: int, path: str) -> str:
    lengths = sorted(len(item) for item in items)
    over = sum(n > limit for n in lengths)
    typical = lengths[len(lengths) // 2]
    return (
        f"{over:,} item(s) of {path} are longer than data.max_item_length={limit} characters (the longest has "
        f"{lengths[-1]:,}, a typical one {typical}); sequence models pad every item to the longest: remove "
        "them, or raise --data.max_item_length"
    )


class Chunks(torch.utils.data.Dataset):
    """Item ``i``: the examples of ``chunks[i]``, a slice of the split, as one batch."""

    def __init__(self, examples: Examples, chunks: list[slice]):
        self.examples, self.chunks = examples, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int):
        return self.examples[self.chunks[i]]
