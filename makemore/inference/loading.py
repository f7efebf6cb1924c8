"""A net, its vocabulary and its data settings from a checkpoint file alone, loaded safely.

The file is read by ``makemore.files.checkpoint_file``: ``torch.load(weights_only=True)`` refuses
any pickle that would run code, and the weights are checked against the digest stored when it was
written. The net's class must be one of ``makemore.models``: a checkpoint cannot make us import or
call anything else. The net it names is built on the meta device first, so a file that claims a
huge net allocates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from makemore.data.vocab import Vocabulary
from makemore.errors import MakemoreError
from makemore.files.checkpoint_file import read_checkpoint
from makemore.models import CharModel, build
from makemore.models.base import check_fits_in_memory


@dataclass
class Loaded:
    net: CharModel
    vocab: Vocabulary
    block_size: int
    data: dict  # the data module's settings at training time (path, split), possibly empty


def load(path: str | Path) -> Loaded:
    """Rebuild the net of a makemore checkpoint, in eval mode, on the CPU."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    try:
        spec, chars, block_size = dict(hparams["net"]), hparams["chars"], int(hparams["block_size"])
    except (KeyError, TypeError, ValueError):
        raise MakemoreError(f"checkpoint {path} lacks the net, vocabulary or block size makemore saves") from None
    try:
        vocab = Vocabulary(chars)
    except (ValueError, TypeError):
        raise MakemoreError(f"checkpoint {path} has a malformed vocabulary") from None
    weights = checkpoint["state_dict"]
    prefix = "ema_net.net." if any(k.startswith("ema_net.net.") for k in weights) else "net."  # the evaluated weights
    state = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
    what = f"checkpoint {path} names net"
    # The settings alone could ask for any size: the net is built for real only once its
    # parameters have the shapes of the weights in the file (already in memory) and the rest
    # fits too. (Buffers are left out of the comparison: some are fitted to data and resized
    # when loaded.)
    with torch.device("meta"):
        skeleton = _build(spec, vocab.size, block_size, what)
    expected = {k: tuple(v.shape) for k, v in skeleton.named_parameters()}
    found = {k: tuple(v.shape) for k, v in state.items() if k in expected or k not in dict(skeleton.named_buffers())}
    if expected != found:
        differ = sorted(set(expected.items()) ^ set(found.items()))[0][0]
        raise MakemoreError(f"checkpoint {path} does not match its own net settings (first at {differ})")
    check_fits_in_memory(type(skeleton), vocab.size, block_size, spec.get("init_args"))
    net = _build(spec, vocab.size, block_size, what)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise MakemoreError(
            f"checkpoint {path} does not match its own net settings: {str(err).splitlines()[0]}"
        ) from None
    return Loaded(net.eval(), vocab, block_size, dict(checkpoint.get("datamodule_hyper_parameters") or {}))


def _build(spec: dict, vocab_size: int, block_size: int, what: str) -> CharModel:
    try:
        return build(spec, vocab_size, block_size, what)
    except (TypeError, ValueError) as err:  # settings a family does not take
        raise MakemoreError(f"{what} with settings it does not take: {err}") from None
