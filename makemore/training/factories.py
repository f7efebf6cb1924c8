"""The net, optimizer and schedule a ``CharLM`` is built with, as plain settings and back.

From Python they are factories: a class, or a ``functools.partial`` of one. Saved as they are,
a checkpoint would hold pickled objects, which ``torch.load(weights_only=True)`` rightly refuses;
``describe`` writes them as ``{"class_path": ..., "init_args": {...}}``, the form the command line
saves. ``optimizer_factory`` and ``scheduler_factory`` read that form back, accepting only classes
of modules already imported (``torch.optim``, its schedules, ``makemore.training.optim``): a
checkpoint names nothing to import.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from makemore.errors import MakemoreError
from makemore.training import optim

PLAIN_TYPES = (str, int, float, bool, type(None))
OPTIMIZER_MODULES = (torch.optim, optim)
SCHEDULER_MODULES = (torch.optim.lr_scheduler, optim)
MOVED = {"makemore.optim": optim.__name__}  # where checkpoints written before the package layout look


def plain_scalar(value) -> bool:
    """A string, bool, None or finite number."""
    return isinstance(value, PLAIN_TYPES) and not (isinstance(value, float) and not math.isfinite(value))


def is_plain(value) -> bool:
    """A setting made of dicts, lists and plain scalars only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_plain(v) for v in value)
    return plain_scalar(value)


def describe(factory):
    """``factory`` as ``{"class_path", "init_args"}`` when it is a class or a keyword-only partial
    of one with plain settings; anything else as it is (a checkpoint then holds it pickled)."""
    func, keywords = factory, {}
    if isinstance(factory, functools.partial) and not factory.args:
        func, keywords = factory.func, dict(factory.keywords)
    if not isinstance(func, type) or not is_plain(keywords):
        return factory
    tuples_as_lists = {k: list(v) if isinstance(v, tuple) else v for k, v in keywords.items()}
    return {"class_path": f"{func.__module__}.{func.__qualname__}", "init_args": tuples_as_lists}


def _resolve(spec, modules: tuple, base: type, what: str):
    if not isinstance(spec, dict) or not isinstance(spec.get("init_args") or {}, dict):
        raise MakemoreError(f"{what} {spec!r} is not a class_path with init_args")
    module, _, name = str(spec.get("class_path", "")).rpartition(".")
    module = MOVED.get(module, module)
    for namespace in modules:  # getattr on modules already imported: nothing is imported
        found = getattr(namespace, name, None)
        if isinstance(found, type) and issubclass(found, base) and module in (namespace.__name__, found.__module__):
            break
    else:
        names = ", ".join(m.__name__ for m in modules)
        raise MakemoreError(f"{what} {spec.get('class_path')!r} is not a class of {names}")
    init_args = dict(spec.get("init_args") or {})
    if not is_plain(init_args):
        raise MakemoreError(f"{what} {spec.get('class_path')} has settings that are not plain values")
    return functools.partial(found, **init_args)


def optimizer_factory(spec, what: str = "optimizer"):
    """``params -> optimizer`` from its plain settings."""
    return _resolve(spec, OPTIMIZER_MODULES, torch.optim.Optimizer, what)


def scheduler_factory(spec, what: str = "lr_scheduler"):
    """``optimizer -> schedule`` from its plain settings (None: no schedule)."""
    return None if spec is None else _resolve(spec, SCHEDULER_MODULES, LRScheduler, what)
