"""The contract every model family honours, and the one place a class path becomes a family.

A family is a ``CharModel``: built as ``Family(vocab_size, block_size, **init_args)``, it maps
token ids ``idx (B, T)`` to logits, ``(B, V)`` for a window model (the token after the window) or
``(B, T, V)`` for a sequence model (every next token). Targets hold ``-1`` where nothing is to
be predicted. What training, the CLI, decoding and loading need to know of a family is here,
with a default that fits most of them:

- ``examples``: the data it reads, ``windows`` or ``sequences``; ``reads(init_args)`` answers
  before anything is built (a wrapper reads what its nets read);
- ``loss``: its training loss on a batch (an ensemble's is the mean of its members');
- ``pack_rows``: for a sequence model that also reads packed rows, several items to a row, as
  ``forward(idx, positions=...)`` (``makemore.data.packing``), how wide a row is, in the
  batch's longest items; None: it reads padded batches only. ``pack_by_default``: whether it
  trains faster packed (measured, ``docs/performance.md``), so ``fit`` packs unless told not to;
- ``fit_data``: the training split's examples, a dataset whose ``[:]`` gives ``(inputs,
  targets)``, once before training starts (the bigram counts them; ``NewItems`` learns which
  items are known). It is gathered only by a family that asks, so large data costs nothing;
- ``trained_by_gradient``: False for a model fitted by ``fit_data`` alone (no optimizer steps);
- ``start_decoding`` / ``decode_step``: next-token logits one position at a time. The default
  slides a window model's context and recomputes a sequence model's whole prefix (correct, if
  slow: a family makes it incremental by overriding both).

Each subclass registers itself under its class name; ``resolve`` finds it again from a config's
or a checkpoint's class path, so a checkpoint can only ever build a makemore model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import ClassVar, Literal

import psutil
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from makemore.checks import NET_OPTION
from makemore.data.vocab import BOUNDARY
from makemore.errors import MakemoreError

_FAMILIES: dict[str, type[CharModel]] = {}


def nll(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood of the targets, skipping the ``-1`` ones."""
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    return F.cross_entropy(flat_logits, flat_targets, ignore_index=-1, reduction=reduction)


class CharModel(nn.Module):
    """Base class of every model family; the module docstring states the contract."""

    examples: ClassVar[Literal["windows", "sequences"]] = "windows"
    trained_by_gradient: ClassVar[bool] = True
    pack_rows: float | None = None
    pack_by_default: bool = False
    block_size: int

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _FAMILIES[cls.__name__] = cls

    @classmethod
    def reads(cls, init_args: dict) -> str:
        """The examples this family reads, given its config's ``init_args``."""
        return cls.examples

    def loss(
        self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean", positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``positions``, ``idx`` holds packed rows (only if ``pack_rows``)."""
        return nll(self(idx) if positions is None else self(idx, positions=positions), targets, reduction)

    def fit_data(self, train: Dataset) -> None:
        """The training split's examples (``train[:]``: all of them), before training starts;
        most families need nothing from them."""

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu"):
        """The decoding state before any token (not even the boundary token) has been fed."""
        width = self.block_size if self.examples == "windows" else 0
        return {"context": torch.full((batch_size, width), BOUNDARY, dtype=torch.long, device=device)}

    def decode_step(self, tokens: torch.Tensor, state) -> torch.Tensor:
        """Feed ``tokens (B, n)``; the logits ``(B, V)`` of the token after the last of them."""
        context = torch.cat([state["context"], tokens], dim=1)
        if self.examples == "windows":
            state["context"] = context[:, -self.block_size :]
            return self(state["context"])
        state["context"] = context
        return self(context)[:, -1]


def families() -> dict[str, type[CharModel]]:
    """Every registered family by class name (wrappers included)."""
    return dict(_FAMILIES)


def resolve(class_path: str, what: str = "net") -> type[CharModel]:
    """The family a class path (``makemore.models.WaveNet`` or ``WaveNet``) names, or one line
    saying that it is not a makemore model."""
    module, _, name = str(class_path).rpartition(".")
    family = _FAMILIES.get(name)
    if family is None or module not in ("", "makemore.models", family.__module__):
        known = ", ".join(sorted(_FAMILIES))
        raise MakemoreError(f"{what} {class_path!r} is not a makemore model (those are: {known})")
    return family


def spec_of(spec, what: str = "net") -> tuple[type[CharModel], dict]:
    """The family and init_args of a config's ``{"class_path": ..., "init_args": {...}}``: a
    wrapper's nets are plain dicts that no parser has checked, so a stray key is one line here."""
    if not isinstance(spec, dict) or not isinstance(spec.get("init_args") or {}, dict):
        raise MakemoreError(f"{what} must be a mapping of class_path and init_args, got {spec!r}")
    family = resolve(spec.get("class_path", ""), what)
    init_args = dict(spec.get("init_args") or {})
    options = list(inspect.signature(family).parameters)[2:]  # after vocab_size and block_size
    unknown = sorted(set(init_args) - set(options))
    if unknown:
        known = ", ".join(options)
        raise MakemoreError(f"{what} {family.__name__} has no option {unknown[0]!r}; its options are: {known}")
    return family, init_args


def build(spec: dict, vocab_size: int, block_size: int, what: str = "net", at: str = "") -> CharModel:
    """A net from a config's ``{"class_path": ..., "init_args": {...}}``; ``at`` is where the spec
    sits under the wrapper's init_args (``members[0]``), put into the option a bad value names."""
    family, init_args = spec_of(spec, what)
    try:
        return family(vocab_size, block_size, **init_args)
    except MakemoreError as err:
        message = str(err)
        if not at or not message.startswith(NET_OPTION):
            raise
        raise MakemoreError(f"{NET_OPTION}{at}.init_args.{message[len(NET_OPTION) :]}") from None


def check_fits_in_memory(
    family: Callable[..., nn.Module], vocab_size: int, block_size: int, init_args: dict | None = None, copies: int = 1
) -> None:
    """Refuse, in one line, a net whose weights would not fit in this machine's free memory,
    before any of it is allocated: a huge size would otherwise get the process killed or swap
    the machine. The net is built on the meta device (shapes only: no memory, no random draws).
    ``copies``: how many tensors of the weights' size the caller keeps (gradients, optimizer
    moments, a weight average)."""
    try:
        with torch.device("meta"):
            net = family(vocab_size, block_size, **(init_args or {}))
    except (RuntimeError, TypeError) as err:  # a size past int64: torch cannot even count the elements
        if "overflow" not in str(err).lower():
            raise
        raise MakemoreError(
            "model.net has sizes too large to count its weights; lower its sizes (n_hidden, n_embd, n_layer) "
            "or --data.block_size"
        ) from None
    tensors = [*net.parameters(), *net.buffers()]
    needed = sum(t.numel() * t.element_size() for t in tensors) * copies
    free = psutil.virtual_memory().available
    if needed > free:
        raise MakemoreError(
            f"model.net {type(net).__name__} needs {needed / 1e9:,.1f} GB for its weights"
            f"{' and training state' if copies > 1 else ''}, more than the {free / 1e9:,.1f} GB free here; "
            "lower its sizes (n_hidden, n_embd, n_layer) or --data.block_size"
        )
