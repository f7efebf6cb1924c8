"""New items: a net's distribution told which items the training split already holds.

A held-out item is seldom a training item again: a list of unique names split at random puts a
name in the test split and the training split only if the list holds it twice. A net fitted on
the training split gives its items much of its mass (memorised names), mass a held-out split
mostly cannot use. ``NewItems`` keeps the net's distribution and moves mass between the two
kinds of item: the items seen ``k`` times in training share the rate ``r_k`` at which held-out
items are such items, new items share the rest::

    P'(x) = r_k * w(x) / Z_k   if x was seen k times,     P'(x) = P(x) * r_0 / (1 - M)   if new,
    w(x) = P(x)^power * exp(repeat_weight * score(x)),

where ``Z_k`` sums ``w`` over the items seen ``k`` times and ``M`` is the net's mass on all seen
items. A power below 1 shares a kind's rate more evenly than the net would: its largest
probabilities are memorised names, and a name's chance to come again owes little to how often
names like it occur. ``score`` says how much an item looks like the training items that already
repeat (``makemore.models.wrappers.repeats``), so that items like them get more of the rate.

``P'`` still sums to one, and it factorises into next-character probabilities through a trie of
the seen items: with ``S(n)`` the (weighted) mass below trie node ``n`` relative to its prefix,
``P'(c | prefix) = P(c | prefix) * (a + S(prefix + c)) / (a + S(prefix))``, ``a = r_0 / (1 - M)``,
``S(n) = sum over the seen items x below n of (P'(x) / P(x) - a) * P(x | n)``.
Off the trie (a prefix no seen item has) ``S`` is 0 and the net's prediction stands as it is.

The rates come from the training split alone, left one out (Good-Turing's idea): an item that
the training split holds ``c`` times is, to the other training items, one seen ``c - 1`` times.
So the validation split fits nothing, and its loss is as clean as any config's.

Training is the net's own: the correction applies in eval mode, so evaluation, scoring and
sampling use it. ``S`` depends on the weights; it is recomputed (one pass over the seen items)
whenever the net's weights have changed since the last evaluation.
"""

from __future__ import annotations

import psutil
import torch
from torch.utils.data import Dataset

from makemore.checks import NET_OPTION, finite, positive
from makemore.data.vocab import BOUNDARY
from makemore.errors import MakemoreError
from makemore.models.base import CharModel, build, spec_of
from makemore.models.wrappers.repeats import repeat_scores

SMOOTHING = 0.5  # added to each count of items by kind: no rate is ever zero


class NewItems(CharModel):
    """``forward(idx (B, T)) -> logits (B, T, V)``: the wrapped net's logits in training, the
    corrected ones in eval mode.

    Args:
        vocab_size, block_size: set from the data, passed on to the net.
        net: ``{"class_path": "makemore.models.<Net>", "init_args": {...}}``, a sequence model
            (recurrent, Transformer, or an ensemble of them).
        power: seen items of one kind share its rate in proportion to ``P(x)^power``: 1 keeps
            the net's proportions, 0 shares it equally.
        repeat_weight: how far the repeat score moves that share (0: not at all).
        repeat_order: the n-gram order of the repeat score's character models.
    """

    examples = "sequences"

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        net: dict,
        power: float = 1.0,
        repeat_weight: float = 0.0,
        repeat_order: int = 3,
    ):
        super().__init__()
        finite(NET_OPTION + "power", power, low=0, high=1)
        finite(NET_OPTION + "repeat_weight", repeat_weight)
        if positive("repeat_order", repeat_order) > block_size:  # its n-grams pad each item by this much
            raise MakemoreError(
                f"{NET_OPTION}repeat_order={repeat_order} is longer than any item "
                f"(data.block_size={block_size}); lower it"
            )
        self.power, self.repeat_weight, self.repeat_order = power, repeat_weight, repeat_order
        self.reads({"net": net})
        self.net = build(net, vocab_size, block_size, "NewItems' net", "net")
        self.vocab_size, self.block_size = vocab_size, block_size
        # Set by fit_data: the seen items' targets (one row each, -1 padded), how often each was
        # seen and its repeat score, and rates[k] = how often a held-out item is one seen k times
        # (rates[0]: a new one).
        self.register_buffer("seen", torch.zeros(0, block_size, dtype=torch.long))
        self.register_buffer("seen_counts", torch.zeros(0, dtype=torch.long))
        self.register_buffer("seen_scores", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("rates", torch.zeros(0, dtype=torch.float64))
        self._trie = None  # (children (nodes, V), paths (items, T + 1)), built from ``seen``
        self._masses = None  # (fingerprint of the weights and shares, a, S per node)
        self.register_load_state_dict_pre_hook(_take_saved_sizes)

    @classmethod
    def reads(cls, init_args: dict) -> str:
        """Sequences: the net must be a sequence model (the CLI asks before building anything)."""
        spec = init_args.get("net") or {}
        family, net_args = spec_of(spec, "NewItems' net")
        if issubclass(family, NewItems) or family.reads(net_args) != "sequences":
            raise MakemoreError(
                f"NewItems needs a sequence model (recurrent, Transformer or an ensemble of them); "
                f"{spec.get('class_path')} does not read whole sequences, which hold an item's whole prefix"
            )
        return "sequences"

    @property
    def pack_rows(self) -> float | None:
        return self.net.pack_rows

    @property
    def pack_by_default(self) -> bool:
        return self.net.pack_by_default

    def loss(
        self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean", positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.net.loss(idx, targets, reduction, positions)  # training is the net's own

    @torch.no_grad()
    def fit_data(self, train: Dataset) -> None:
        """Take the training items (rows of sequence targets) and estimate the rates on them,
        each item left out in turn: ``r_k`` is the share of training items held ``k + 1`` times."""
        train_targets = train[:][1]
        if len(train_targets) == 0:
            raise MakemoreError("NewItems needs training items to tell new items from seen ones")
        seen, counts = torch.unique(train_targets.cpu(), dim=0, return_counts=True)
        kinds = torch.zeros(int(counts.max()) + 1, dtype=torch.float64)
        kinds.index_add_(0, counts - 1, counts.double())  # c copies, each seen c - 1 times by the rest
        items = [[token for token in row if token >= 0] for row in seen.tolist()]
        scores = repeat_scores(items, counts.tolist(), self.repeat_order, self.vocab_size)
        device = self.seen.device
        self.seen, self.seen_counts = seen.to(device), counts.to(device)
        self.seen_scores = torch.tensor(scores, dtype=torch.float64, device=device)
        self.rates = ((kinds + SMOOTHING) / (kinds.sum() + SMOOTHING * len(kinds))).to(device)
        self._trie = self._masses = None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = self.net(idx)
        if self.training or len(self.seen) == 0:
            return logits
        return self._corrected(logits, self._walk(None, idx))

    def start_decoding(self, batch_size: int, device: torch.device | str = "cpu") -> dict:
        return {"net": self.net.start_decoding(batch_size, device), "node": None}

    def decode_step(self, tokens: torch.Tensor, state: dict) -> torch.Tensor:
        logits = self.net.decode_step(tokens, state["net"])
        if self.training or len(self.seen) == 0:
            return logits
        state["node"] = self._walk(state["node"], tokens)[:, -1]
        return self._corrected(logits, state["node"])

    def _walk(self, node: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        """The trie node (-1: off the trie) after each of ``tokens (B, n)``, from ``node (B,)``;
        ``None``: nothing fed yet, so the first token is the boundary token at the root."""
        children = self._children()
        nodes = []
        for t in range(tokens.shape[1]):
            if node is None:
                node = torch.where(tokens[:, 0] == BOUNDARY, 0, -1)
            else:
                inside = (node >= 0) & (tokens[:, t] != BOUNDARY)  # after an item's end: nothing to correct
                node = torch.where(inside, children[node.clamp(min=0), tokens[:, t]], -1)
            nodes.append(node)
        return torch.stack(nodes, dim=1)

    def _corrected(self, logits: torch.Tensor, node: torch.Tensor) -> torch.Tensor:
        """``log P'(c | prefix)`` for logits ``(..., V)`` whose prefixes end at trie ``node (...)``."""
        a, masses = self._masses_now()
        children = self._children()[node.clamp(min=0)]  # (..., V)
        here = torch.where(node >= 0, masses[node.clamp(min=0)], 0.0)
        below = torch.where((children >= 0) & (node >= 0)[..., None], masses[children.clamp(min=0)], 0.0)
        # a + S is the corrected mass of a prefix relative to the net's: positive; the clamp only
        # guards against float rounding.
        shift = (a + below).clamp(min=1e-300).log() - (a + here).clamp(min=1e-300).log()[..., None]
        return logits.log_softmax(dim=-1) + shift.to(logits.dtype)

    def _children(self) -> torch.Tensor:
        if self._trie is None or self._trie[0].device != self.seen.device:  # built on another device
            self._trie = _trie(self.seen, self.vocab_size)
        return self._trie[0]

    def _masses_now(self) -> tuple[float, torch.Tensor]:
        # Recomputed when the weights change: optimizer steps, the weight average and loads all
        # write them in place (and a fused optimizer leaves no trace on the tensors), so the
        # key is their values' sum, with the shares' settings.
        with torch.no_grad():
            weights = float(sum(p.double().sum() for p in self.net.parameters()))
        fingerprint = (self.power, self.repeat_weight, weights, self.seen.device)
        if self._masses is None or self._masses[0] != fingerprint:
            self._masses = (fingerprint, *self._weighted_masses())
        return self._masses[1], self._masses[2]

    @torch.no_grad()
    def _weighted_masses(self) -> tuple[float, torch.Tensor]:
        """``a`` and ``S`` per trie node from the net's log-probabilities of the seen items."""
        children, paths = self._children(), self._trie[1]
        targets = self.seen
        inputs = torch.cat([torch.full_like(targets[:, :1], BOUNDARY), targets[:, :-1].clamp(min=0)], dim=1)
        per_char = []
        for x, y in zip(inputs.split(1024), targets.split(1024)):
            logp = self.net(x).log_softmax(dim=-1).double()
            per_char.append(logp.gather(-1, y.clamp(min=0)[..., None])[..., 0].masked_fill(y < 0, 0.0))
        per_char = torch.cat(per_char)  # (items, T)
        totals = per_char.sum(dim=1)  # log P(x)
        kinds, rates = self.seen_counts, self.rates.double()  # double again if the module was cast
        log_w = self.power * totals + self.repeat_weight * self.seen_scores.double()
        top = log_w.max()
        log_z = torch.zeros_like(rates).index_add_(0, kinds, (log_w - top).exp()).log() + top  # log Z_k
        a = float(rates[0] / (1 - totals.exp().sum()).clamp(min=1e-12))
        log_ratio = rates[kinds].log() + log_w - log_z[kinds] - totals  # log P'(x) / P(x)
        # log P(x | its first d targets), d = 0 .. T; in logs, so no tiny P(x) is divided by.
        rest = torch.cat([per_char.flip(1).cumsum(1).flip(1), torch.zeros_like(totals)[:, None]], dim=1)
        keep = paths >= 0
        below = (log_ratio[:, None] + rest).exp() - a * rest.exp()
        masses = torch.zeros(len(children), dtype=torch.float64, device=targets.device)
        masses.index_add_(0, paths[keep], below[keep])
        return a, masses


def _take_saved_sizes(module: NewItems, state_dict: dict, prefix: str, *args) -> None:
    """The seen items' buffers take the sizes of the checkpoint's (they come from the data)."""
    for name in ("seen", "seen_counts", "seen_scores", "rates"):
        if prefix + name in state_dict:
            setattr(module, name, torch.empty_like(state_dict[prefix + name], device=module.seen.device))
    module._trie = module._masses = None


def _trie(seen: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The trie of the seen items' targets: ``children[node, token]`` (-1: none; node 0 is the
    empty prefix) and ``paths[item, d]``, the node after the item's first d targets."""
    links: dict[tuple[int, int], int] = {}
    paths = []
    for row in seen.tolist():
        path = [0]
        for token in row:
            if token < 0:
                break
            path.append(links.setdefault((path[-1], token), len(links) + 1))
        paths.append(path + [-1] * (len(row) + 1 - len(path)))
    paths = torch.tensor(paths, dtype=torch.long).view(len(seen), seen.shape[1] + 1)
    needed = (len(links) + 1) * vocab_size * 8  # a row of every token for every prefix: grows with the vocabulary
    if needed > psutil.virtual_memory().available:
        raise MakemoreError(
            f"NewItems' table of the training items' {len(links) + 1:,} prefixes x {vocab_size:,} characters needs "
            f"{needed / 1e9:,.1f} GB, more than is free here; NewItems suits a small vocabulary: train its net alone"
        )
    children = torch.full((len(links) + 1, vocab_size), -1, dtype=torch.long)
    if links:
        parents, tokens = zip(*links)
        children[list(parents), list(tokens)] = torch.tensor(list(links.values()))
    return children.to(seen.device), paths.to(seen.device)
