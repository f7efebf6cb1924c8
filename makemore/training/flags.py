"""Lightning's Trainer flags, read from the config before anything is built.

``fit`` trains several optimizer steps per ``training_step`` call (``CharLM``), under manual
optimization, where the Trainer itself refuses gradient clipping and counts validation
intervals in calls, not steps. Here each flag is turned into what does its job in that loop, or
refused in one line when it cannot apply; and the schedule is fitted to the run.
"""

from __future__ import annotations

import importlib

import torch
from lightning.pytorch.callbacks import DeviceStatsMonitor, LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_info

from makemore.errors import MakemoreError


def take_epoch_length(config) -> None:
    """``--trainer.val_check_interval N`` and ``--trainer.limit_train_batches N`` count optimizer
    steps here: both make ``data.batches_per_epoch`` N (a fraction: that share of it), and
    validation runs at the end of each such epoch."""
    steps = config.data.batches_per_epoch
    for flag in ("val_check_interval", "limit_train_batches"):
        value = config.trainer.get(flag)
        if value is None or isinstance(value, float) and value == 1.0:
            continue
        count = _count(value, config.data.batches_per_epoch)
        if count is None:
            raise MakemoreError(f"--trainer.{flag} {value}: give a number of optimizer steps (>= 1) or a fraction")
        steps = min(steps, count)
        config.trainer[flag] = None
    config.data.batches_per_epoch = steps  # the data module fits its blocks of steps to it


def take_overfit(config) -> int:
    """``--trainer.overfit_batches N``: every step trains on one of the same ``N`` batches (a
    fraction: that share of an epoch's), to see a net drive its training loss down; validation
    stays as it was. Lightning's own would swap the loader's sampler, which draws batches by step."""
    value = config.trainer.get("overfit_batches") or 0
    if not value:
        return 0
    count = _count(value, config.data.batches_per_epoch)
    if count is None or count > config.data.batches_per_epoch:
        raise MakemoreError(
            f"--trainer.overfit_batches {value}: give a number of batches from 1 to data.batches_per_epoch "
            f"({config.data.batches_per_epoch}), or a fraction"
        )
    config.trainer.overfit_batches = 0.0
    return count


def _count(value, epoch: int) -> int | None:
    """A flag's number of steps or batches: ``N``, or a fraction of an epoch of ``epoch``; None: neither."""
    if isinstance(value, float) and 0 < value < 1:
        return max(1, round(value * epoch))
    if isinstance(value, float) and value.is_integer():  # the CLI reads "8" as 8.0
        value = int(value)
    return value if isinstance(value, int) and value >= 1 else None


def take_val_share(config) -> None:
    """``--trainer.limit_val_batches 0.25``: the validations during ``fit`` evaluate that share of
    the validation items (``data.val_items``). Lightning's share counts evaluation batches, and a
    split here makes only a few large ones. A whole number ``N`` stays Lightning's: N batches."""
    value = config.trainer.get("limit_val_batches")
    if isinstance(value, float) and 0 < value < 1:
        config.data.val_items = value
        config.trainer.limit_val_batches = None


def monitors_by_step(config) -> None:
    """``LearningRateMonitor`` and ``DeviceStatsMonitor`` log by Lightning's count of
    ``training_step`` calls; with either, each call trains one optimizer step (``data.fused_steps
    1``), so they log every ``log_every_n_steps`` optimizer steps, at the right step."""
    for callback in config.trainer.get("callbacks") or []:
        module, _, name = getattr(callback, "class_path", "").rpartition(".")  # resolved by the parser
        kind = getattr(importlib.import_module(module), name) if module else None
        if isinstance(kind, type) and issubclass(kind, (LearningRateMonitor, DeviceStatsMonitor)):
            config.data.fused_steps = 1
            rank_zero_info(f"{name}: one optimizer step a training_step call (data.fused_steps 1), to log by step")


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


def refuse_barebones(trainer) -> None:
    """``--trainer.barebones true`` forbids ``self.log`` and checkpoints, which ``fit`` is built
    on (the best checkpoint is chosen by the logged ``val_loss``)."""
    if trainer.get("barebones"):
        raise MakemoreError(
            "--trainer.barebones cannot run fit, which logs val_loss and keeps checkpoints; to time the "
            "training loop itself, benchmarks/fit_vs_plain.py measures fit against a plain loop"
        )


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
    """A schedule whose horizon is left unset (``total_steps: null``) ends with the run: at
    ``--trainer.max_steps`` or after ``--trainer.max_epochs`` epochs of ``data.batches_per_epoch``
    steps, whichever comes first."""
    scheduler = config.model.get("lr_scheduler")
    args = getattr(scheduler, "init_args", None)
    if args is None or "total_steps" not in args or args.total_steps is not None:
        return
    steps, epochs = config.trainer.max_steps, config.trainer.get("max_epochs")
    ends = [steps] if steps is not None and steps >= 0 else []
    if epochs is not None and epochs >= 1:
        ends.append(epochs * config.data.batches_per_epoch)
    if not ends:
        raise MakemoreError(
            "the learning-rate schedule ends with the run, which has no --trainer.max_steps or "
            "--trainer.max_epochs; set one, or --model.lr_scheduler.init_args.total_steps"
        )
    args.total_steps = min(ends)
