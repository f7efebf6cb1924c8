"""An ensemble: several nets trained side by side, evaluated as their average distribution.

Each member learns on its own loss (the same batches, its own initialisation and dropout
masks), so the members make partly independent mistakes; averaging their probabilities
``p(x) = mean_m p_m(x)`` then scores better than any one of them (Hansen & Salamon 1990).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.errors import MakemoreError
from makemore.models.base import CharModel, build, spec_of


class Ensemble(CharModel):
    """``forward(idx)``: the log of the members' mean probabilities (valid logits of the mixture);
    ``loss``: the mean of the members' own losses, which is what each of them trains on.

    Args:
        vocab_size, block_size: set from the data, passed on to every member.
        members: each ``{"class_path": "makemore.models.<Net>", "init_args": {...}}``, as a
            config names a net; all members must read the same examples (windows or sequences).
    """

    def __init__(self, vocab_size: int, block_size: int, members: list[dict]):
        super().__init__()
        self.examples = self.reads({"members": members})
        self.block_size = block_size
        self.members = nn.ModuleList(
            build(spec, vocab_size, block_size, "Ensemble member", f"members[{i}]") for i, spec in enumerate(members)
        )

    @classmethod
    def reads(cls, init_args: dict) -> str:
        """The examples the members read (the CLI asks before building anything)."""
        members = init_args.get("members")
        if not isinstance(members, list) or not members:
            raise MakemoreError("an Ensemble needs a list of at least one member under init_args.members")
        kinds = set()
        for spec in members:
            family, member_args = spec_of(spec, "Ensemble member")
            if issubclass(family, Ensemble):
                raise MakemoreError("an Ensemble member cannot be another Ensemble; list its members instead")
            kinds.add(family.reads(member_args))
        if len(kinds) > 1:
            raise MakemoreError("Ensemble members must all read windows or all read sequences, not both")
        return kinds.pop()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self._mixture(torch.stack([member(idx) for member in self.members]))

    @property
    def pack_rows(self) -> float | None:
        rows = [member.pack_rows for member in self.members]
        return None if None in rows else min(rows)

    @property
    def pack_by_default(self) -> bool:
        return all(member.pack_by_default for member in self.members)

    def loss(
        self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean", positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        losses = [member.loss(idx, targets, reduction, positions) for member in self.members]
        return sum(losses) / len(self.members)

    def _mixture(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logits.log_softmax(dim=-1), dim=0) - math.log(len(self.members))

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> list:
        return [member.start_decoding(batch_size, device) for member in self.members]

    def decode_step(self, tokens: torch.Tensor, states: list) -> torch.Tensor:
        logits = [member.decode_step(tokens, state) for member, state in zip(self.members, states)]
        return self._mixture(torch.stack(logits))
