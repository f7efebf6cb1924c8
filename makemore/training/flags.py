"""Lightning's Trainer flags, read from the config before anything is built.

``fit`` trains several optimizer steps per ``training_step`` call (``CharLM``), under manual
optimization, where the Trainer itself refuses gradient clipping and counts validation
intervals in calls, not steps. Here each flag is turned into what does its job in that loop, or
refused in one line when it cannot apply yet; and the schedule and loggers are fitted to the run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from makemore.errors import MakemoreError


def log_into(loggers, run_dir: Path) -> None:
    """Every logger that writes files (TensorBoard, CSV, ...) writes them into the run directory."""
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        args = getattr(logger, "init_args", None)  # a logger named by class path in the config
        if args is not None and "save_dir" in args:
            args.save_dir = str(run_dir)
            for key in ("name", "version"):  # no sub-folders of their own: the run is the folder
                if key in args:
                    args[key] = ""


def take_epoch_length(config) -> None:
    """``--trainer.val_check_interval N`` and ``--trainer.limit_train_batches N`` count optimizer
    steps here: both make ``data.batches_per_epoch`` N (a fraction: that share of it), and
    validation runs at the end of each such epoch."""
    steps = config.data.batches_per_epoch
    for flag in ("val_check_interval", "limit_train_batches"):
        value = config.trainer.get(flag)
        if value is None or isinstance(value, float) and value == 1.0:
            continue
        if isinstance(value, float) and 0 < value < 1:
            value = max(1, round(value * config.data.batches_per_epoch))
        elif isinstance(value, float) and value.is_integer():  # the CLI reads "8" as 8.0
            value = int(value)
        if not isinstance(value, int) or value < 1:
            raise MakemoreError(f"--trainer.{flag} {value}: give a number of optimizer steps (>= 1) or a fraction")
        steps = min(steps, value)
        config.trainer[flag] = None
    config.data.batches_per_epoch = steps  # the data module fits its blocks of steps to it


def take_accumulation(trainer) -> int:
    """``--trainer.accumulate_grad_batches N``: every optimizer step adds up the gradients of ``N``
    batches of ``data.batch_size`` (``CharLM``; the Trainer refuses the flag under manual
    optimization). Steps, schedules and ``max_steps`` count optimizer steps, as in Lightning."""
    batches = trainer.accumulate_grad_batches
    if batches is None:
        return 1
    if not isinstance(batches, int) or batches < 1:
        raise MakemoreError(f"--trainer.accumulate_grad_batches must be a whole number >= 1, got {batches}")
    trainer.accumulate_grad_batches = 1  # the Trainer's own default: it accumulates nothing itself
    return batches


def take_clipping(trainer) -> tuple[float | None, str]:
    """Gradient clipping as Lightning's flags ask, done by ``CharLM`` at every optimizer step (the
    Trainer itself refuses the flags under manual optimization); other flags it cannot honour
    are refused here, in one line."""
    on_gpu = trainer.accelerator in ("gpu", "cuda") or trainer.accelerator == "auto" and torch.cuda.is_available()
    if str(trainer.precision) in ("16", "16-mixed") and not on_gpu:
        # Lightning scales the loss of 16-mixed on a GPU only; unscaled fp16 gradients underflow
        raise MakemoreError("--trainer.precision 16-mixed needs a GPU (loss scaling); on a CPU use bf16-mixed")
    clip, algorithm = trainer.gradient_clip_val, trainer.gradient_clip_algorithm or "norm"
    if clip is not None and clip < 0:
        raise MakemoreError(f"--trainer.gradient_clip_val must be >= 0, got {clip}")
    trainer.gradient_clip_val = trainer.gradient_clip_algorithm = None
    return (clip or None), algorithm


def checkpointing_off(config) -> None:
    """``--trainer.enable_checkpointing false``: the run's checkpoint callback stays (Lightning
    would refuse it alongside the flag) but writes nothing, not even ``last.ckpt``."""
    if config.trainer.enable_checkpointing is False:
        config.trainer.enable_checkpointing = None
        config.checkpoint.save_top_k, config.checkpoint.save_last = 0, False
        config.checkpoint.last_every_n_steps = 0


def check_steps(config) -> None:
    steps = config.trainer.max_steps
    if steps is not None and (steps == 0 or steps < -1):
        raise MakemoreError(f"trainer.max_steps must be at least 1 (or -1: no limit), got {steps}")


def follow_max_steps(config) -> None:
    """A schedule whose horizon is left unset (``total_steps: null``) ends with the run."""
    scheduler = config.model.get("lr_scheduler")
    args = getattr(scheduler, "init_args", None)
    if args is None or "total_steps" not in args or args.total_steps is not None:
        return
    steps = config.trainer.max_steps
    if steps is None or steps < 0:
        raise MakemoreError(
            "the learning-rate schedule ends with the run, which has no --trainer.max_steps; set one, or "
            "--model.lr_scheduler.init_args.total_steps"
        )
    args.total_steps = steps
