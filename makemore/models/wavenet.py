"""The MLP -> WaveNet line of makemore V1-V5 (Bengio et al. 2003; van den Oord et al. 2016).

``Embedding -> [FlattenConsecutive(g) -> Linear -> BatchNorm1d -> Tanh] per level -> Linear``.
With one level that fuses the whole context (``merge=[block_size]``) it is the flat MLP of
V1/V2; with ``merge=[2, 2, 2]`` it is the hierarchical, dilated-convolution-like tree of V3-V5.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.checks import positive
from makemore.errors import MakemoreError
from makemore.models.base import CharModel
from makemore.nn.layers import BatchNorm1d, Embedding, FlattenConsecutive, Linear, Sequential, Tanh


class WaveNet(CharModel):
    """A window model: ``forward(idx (B, block_size)) -> logits (B, vocab_size)`` for the next token.

    Args:
        vocab_size: number of tokens, boundary token included (set from the data).
        block_size: context length in tokens (set from the data).
        n_embd: size of each token's embedding.
        n_hidden: width of every hidden level.
        merge: how many consecutive positions each level fuses; their product is block_size.
        batchnorm_bug: reproduce V3, whose BatchNorm reduced 3-D input over the batch only.
    """

    examples = "windows"

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_embd: int = 24,
        n_hidden: int = 128,
        merge: list[int] = [2, 2, 2],  # noqa: B006 - jsonargparse shows the default in --help
        batchnorm_bug: bool = False,
    ):
        super().__init__()
        positive("n_embd", n_embd)
        positive("n_hidden", n_hidden)
        if not isinstance(merge, (list, tuple)) or not merge:
            raise MakemoreError(f"--model.net.init_args.merge must be a list of group sizes, got {merge!r}")
        for i, group in enumerate(merge):  # [-2, -4] multiplies to 8 too
            positive(f"merge[{i}]", group)
        if math.prod(merge) != block_size:
            raise MakemoreError(
                f"WaveNet merge={list(merge)} fuses {math.prod(merge)} positions but block_size is "
                f"{block_size}; make the product of merge equal data.block_size"
            )
        self.block_size = block_size
        layers: list[nn.Module] = [Embedding(vocab_size, n_embd)]
        width = n_embd
        for group in merge:
            layers += [
                FlattenConsecutive(group),
                Linear(width * group, n_hidden, bias=False),
                BatchNorm1d(n_hidden, batch_dim_only=batchnorm_bug),
                Tanh(),
            ]
            width = n_hidden
        head = Linear(width, vocab_size)
        with torch.no_grad():
            head.weight.mul_(0.1)  # a less confident first guess: loss starts near ln(vocab)
        self.layers = Sequential(*layers, head)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.layers(idx)
