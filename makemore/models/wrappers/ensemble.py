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
from makemore.inference import decoding


class Ensemble(nn.Module):
    """``forward(idx)``: in training, every member's logits stacked, ``(M, *logits)``, which
    ``makemore.training.module.nll`` scores as the mean of the members' losses; in eval mode, the log of
    the members' mean probabilities (valid logits of the mixture).

    Args:
        vocab_size, block_size: set from the data, passed on to every member.
        members: each ``{"class_path": "makemore.models.<Net>", "init_args": {...}}``, as a
            config names a net; all members must read the same examples (windows or sequences).
    """

    def __init__(self, vocab_size: int, block_size: int, members: list[dict]):
        super().__init__()
        classes = _classes(members)
        self.examples = _examples(classes)
        self.block_size = block_size
        nets = (cls(vocab_size, block_size, **dict(spec.get("init_args") or {})) for cls, spec in classes)
        self.members = nn.ModuleList(nets)

    @staticmethod
    def reads(init_args) -> str:
        """The examples the members read (the CLI asks before building anything)."""
        return _examples(_classes(list(init_args["members"])))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(idx) for member in self.members])
        return logits if self.training else self._mixture(logits)

    def _mixture(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logits.log_softmax(dim=-1), dim=0) - math.log(len(self.members))

    def start_decoding(self, batch_size: int) -> list:
        return [decoding.start(member, batch_size) for member in self.members]

    def decode_step(self, tokens: torch.Tensor, states: list) -> torch.Tensor:
        logits = [decoding.step(member, tokens, state) for member, state in zip(self.members, states)]
        return self._mixture(torch.stack(logits))


def _classes(members: list[dict]) -> list[tuple[type, dict]]:
    """Each member's class, which must be a makemore model (not another ensemble), and its spec."""
    from makemore import models  # this module is one of them

    if not members:
        raise MakemoreError("an Ensemble needs at least one member under init_args.members")
    found = []
    for spec in members:
        name = str(spec.get("class_path", "")).rpartition(".")[2]
        if name not in models.__all__ or name == "Ensemble":
            raise MakemoreError(f"Ensemble member {spec.get('class_path')!r} is not a makemore model")
        found.append((getattr(models, name), spec))
    return found


def _examples(classes: list[tuple[type, dict]]) -> str:
    kinds = {getattr(cls, "examples", "windows") for cls, _ in classes}
    if len(kinds) > 1:
        raise MakemoreError("Ensemble members must all read windows or all read sequences, not both")
    return kinds.pop()
