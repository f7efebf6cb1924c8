"""Hand-built layers: every forward pass is written out with plain tensor math.

Each layer is an ``nn.Module`` holding ``nn.Parameter``s and buffers, so Lightning can move,
save and summarise it, but none of them calls ``nn.Linear``, ``F.embedding`` or
``F.batch_norm``: the point of the codebase is to see the math.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from makemore.nn.distributed import summed, world_size


class Linear(nn.Module):
    """``y = x @ W + b`` with ``W ~ randn(fan_in, fan_out) / sqrt(fan_in)`` (Kaiming, no gain)."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out


class Embedding(nn.Module):
    """A lookup table: row ``i`` of the weight is the vector of token ``i``."""

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_embeddings, embedding_dim))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.weight[idx]


class BatchNorm1d(nn.Module):
    """Batch normalisation (Ioffe & Szegedy 2015) over ``(B, C)`` or ``(B, T, C)`` input.

    Training normalises with the batch's mean and biased variance and moves the running
    statistics (unbiased variance) by ``momentum``; eval mode uses the running statistics.
    A 3-D input is reduced over batch and time, one statistic per channel.

    ``batch_dim_only=True`` reproduces makemore V3's bug: a 3-D input is reduced over the batch
    dimension only, so every (position, channel) pair gets its own statistics and the running
    buffers grow to ``(T, C)`` on the first training step.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, batch_dim_only: bool = False):
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.batch_dim_only = batch_dim_only
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.register_load_state_dict_pre_hook(_take_saved_shapes)

    def _reduce_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.ndim == 2 or self.batch_dim_only:
            return (0,)
        return (0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            dims = self._reduce_dims(x)
            mean, var, n = self._batch_moments(x, dims)
            with torch.no_grad():
                self._update_running(mean, var * (n / max(n - 1, 1)))  # running: unbiased
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias

    @staticmethod
    def _batch_moments(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Mean, biased variance and count over ``dims``. Under DDP (several ranks) they are
        the statistics of the global batch, every rank's rows together, as
        ``torch.nn.SyncBatchNorm`` computes them; gradients flow back through the reduction."""
        n = math.prod([x.shape[d] for d in dims])  # a list: a generator breaks torch.compile's graph
        if world_size() == 1:
            var, mean = torch.var_mean(x, dim=dims, correction=0)
            return mean, var, n
        # Two passes (mean, then squared deviations): no cancellation as in E[x^2] - E[x]^2.
        local = x.sum(dim=dims)
        sums = summed(torch.cat([local.reshape(-1), x.new_tensor([n])]))  # the count rides along
        total = sums[-1].detach()
        mean = (sums[:-1] / total).view_as(local)
        var = summed(((x - mean) ** 2).sum(dim=dims)) / total
        return mean, var, int(total.item())

    def _update_running(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        m = self.momentum
        if mean.shape != self.running_mean.shape:  # the V3 bug: buffers become (T, C)
            self.running_mean = self.running_mean.expand_as(mean).clone()
            self.running_var = self.running_var.expand_as(var).clone()
        # Under bf16/fp16 autocast the statistics come in half precision; the buffers keep theirs.
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
        self.running_var.lerp_(var.to(self.running_var.dtype), m)


def _take_saved_shapes(module: BatchNorm1d, state_dict: dict, prefix: str, *args) -> None:
    """A V3 checkpoint holds (T, C) running buffers: take their shape before they are copied in."""
    for name in ("running_mean", "running_var"):
        saved = state_dict.get(prefix + name)
        if saved is not None and saved.shape != getattr(module, name).shape:
            setattr(module, name, torch.empty_like(saved, device=getattr(module, name).device))


class Tanh(nn.Module):
    """``tanh(x) = (e^x - e^-x) / (e^x + e^-x)``, via torch.tanh for numerical safety."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class FlattenConsecutive(nn.Module):
    """Fuse every ``n`` consecutive positions: ``(B, T, C) -> (B, T // n, C * n)``.

    A length-1 time axis is dropped, so the last fusion hands a plain ``(B, C)`` to the head.
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x


class Sequential(nn.Module):
    """Apply layers in order."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def __getitem__(self, i: int) -> nn.Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class LayerNorm(nn.Module):
    """Layer normalisation (Ba et al. 2016): each vector over its last dimension to zero mean and
    unit (biased) variance, then a learned scale and shift. No running statistics."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Half-precision input is normalised in float32, as torch's layer_norm does: the backward
        # pass of rsqrt goes as var^-1.5, which overflows float16 for any var below ~6e-4.
        half = x.dtype in (torch.float16, torch.bfloat16)
        wide = x.float() if half else x
        # Two passes, mean then squared deviations: on a CPU, torch.var_mean over the last
        # dimension measured 5x slower than these three reductions together (torch 2.13).
        centred = wide - wide.mean(dim=-1, keepdim=True)
        var = (centred * centred).mean(dim=-1, keepdim=True)
        normed = centred * torch.rsqrt(var + self.eps)
        return (normed.to(x.dtype) if half else normed) * self.weight + self.bias


class GELU(nn.Module):
    """``x * Phi(x)``, Phi the standard normal CDF (Hendrycks & Gimpel 2016), exact via erf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.erf(x * 0.5**0.5))


class Dropout(nn.Module):
    """Zero each element with probability ``p`` in training and scale the rest by ``1 / (1 - p)``,
    so eval mode (the identity) sees the same expected activation."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        # 0 or 1 / (1 - p), built in place: one multiply in the graph, so one in the backward
        scale = torch.rand_like(x).ge_(self.p).div_(1.0 - self.p)
        return x * scale


class TokenDropout(Dropout):
    """Dropout of whole token vectors: in training, each position of a ``(B, T, C)`` input is
    zeroed with probability ``p`` (all its channels at once), the rest scaled by ``1 / (1 - p)``.
    On token embeddings this hides random input characters, a noising that regularises
    small-data language models (Xie et al. 2017; embedding dropout, Gal & Ghahramani 2016)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * super().forward(x.new_ones(*x.shape[:-1], 1))
