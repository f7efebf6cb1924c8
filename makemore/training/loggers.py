"""Loggers named on the command line or in a config write into the run directory."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import lightning.pytorch.loggers

LOGGER_KEYS = ("--trainer.logger", "--trainer.logger+")  # a logger named, or one more added


def log_into(loggers, run_dir: Path) -> None:
    """Every logger that writes files (TensorBoard, CSV, ...) writes them into the run directory."""
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        args = getattr(logger, "init_args", None)  # a logger named by class path in the config
        if args is not None and "save_dir" in args:
            args.save_dir = str(run_dir)
            for key in ("name", "version"):  # no sub-folders of their own: the run is the folder
                if key in args:
                    args[key] = ""


def with_logger_dirs(args: list[str]) -> list[str]:
    """``--trainer.logger+=CSVLogger``: a logger whose class requires a ``save_dir`` gets one if the
    command line gives none (the parse would refuse it); ``log_into`` then makes it the run's."""
    out, rest = [], list(args)
    while rest:
        out.append(rest.pop(0))
        key, eq, value = out[-1].partition("=")
        if key not in LOGGER_KEYS or not (eq or rest):
            continue
        if not eq:
            value = rest.pop(0)
            out.append(value)
        own = next((n for n, arg in enumerate(rest) if arg.partition("=")[0] in LOGGER_KEYS), len(rest))
        if _needs_save_dir(value) and not any(arg.startswith("--trainer.logger.save_dir") for arg in rest[:own]):
            out += ["--trainer.logger.save_dir", "checkpoints"]
    return out


def _needs_save_dir(name: str) -> bool:
    try:
        module, _, short = name.rpartition(".")
        logger = getattr(importlib.import_module(module) if module else lightning.pytorch.loggers, short)
        save_dir = inspect.signature(logger).parameters.get("save_dir")
    except (AttributeError, ImportError, TypeError, ValueError):
        return False  # not a class name: the parser says what is wrong with it
    return save_dir is not None and save_dir.default is inspect.Parameter.empty
