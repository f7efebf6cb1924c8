"""The checks of a config's numbers, each one line naming the option as the user writes it.

A net's sizes and rates arrive from YAML or the command line, and from an ``Ensemble``'s or a
``NewItems``' own list of nets, where nothing checks their types: a size of 0, -5 or 2.5, or a
probability of 1.5 or NaN, would otherwise build a net that sees nothing, or fail deep inside
torch with a traceback. ``name`` is the option under ``--model.net.init_args.``; a wrapper that
builds a net puts its own path in front (``makemore.models.base.build``).
"""

from __future__ import annotations

import math

from makemore.errors import MakemoreError

NET_OPTION = "--model.net.init_args."


def positive(name: str, value, under: str = NET_OPTION) -> int:
    """A size or count: a whole number of at least 1 (``under``: the option's path)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MakemoreError(f"{under}{name} must be a whole number of at least 1, got {value!r}")
    return value


def probability(name: str, value) -> float:
    """A dropout rate: a number in [0, 1) (1 would drop everything; NaN is no rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise MakemoreError(f"{NET_OPTION}{name} must be a probability in [0, 1), got {value!r}")
    return float(value)


def finite(option: str, value, low: float = -math.inf, high: float = math.inf) -> float:
    """A number in ``[low, high]`` that is not NaN or infinite; ``option`` is the whole option name."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MakemoreError(f"{option} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise MakemoreError(f"{option} must lie in [{low:g}, {high:g}], got {value!r}")
    return value
