"""Quiet runs: Lightning's chatter (devices, tips, restoring, why a fit stopped) and its warnings
that no user here can act on stay hidden, unless ``python -m makemore --verbose``."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import makemore

# Lightning's warnings that are no user's to act on here (hidden unless --verbose):
NOT_OURS = (
    # a deprecation inside Lightning's own code (torch's pytree API), nothing a user calls
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # short epochs (a tiny file, a test): Lightning logs by the run's step count all the same
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    # an evaluation, or a new run started from another run's checkpoint, sits in another folder
    r"The dirpath has changed from",
)
# "Received SIGTERM": RunCheckpoint says what it did about it, once
SIGNALS = "lightning.pytorch.trainer.connectors.signal_connector"
PACKAGE_DIR = str(Path(makemore.__file__).parent) + os.sep


class OursOnly(logging.Filter):
    """Lets through makemore's own messages (sent with Lightning's ``rank_zero_info``) and any
    warning; drops Lightning's chatter: devices, tips, restoring, why a fit stopped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.pathname.startswith(PACKAGE_DIR)


OURS_ONLY = OursOnly()


def quiet(verbose: bool = False) -> None:
    """Lightning's information messages and its warnings of :data:`NOT_OURS` stay hidden, unless ``verbose``."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # every rank_zero_info
    chatty = [logging.getLogger(name) for name in ("lightning.fabric.utilities.seed", SIGNALS)]
    if verbose:
        rank_zero.removeFilter(OURS_ONLY)
        for logger in chatty:
            logger.setLevel(logging.NOTSET)
        return
    rank_zero.addFilter(OURS_ONLY)
    for logger in chatty:
        logger.setLevel(logging.WARNING)
    for message in NOT_OURS:
        warnings.filterwarnings("ignore", message=message)
