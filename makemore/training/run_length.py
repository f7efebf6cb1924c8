"""How long a run is: ``--trainer.max_steps`` checked, and a schedule whose horizon is left
unset ending with the run."""

from __future__ import annotations

from makemore.errors import MakemoreError


def check_steps(config) -> None:
    steps = config.trainer.max_steps
    if steps is not None and (steps == 0 or steps < -1):
        raise MakemoreError(f"trainer.max_steps must be at least 1 (or -1: no limit), got {steps}")
    batches = config.trainer.get("accumulate_grad_batches")
    if batches is not None and (not isinstance(batches, int) or batches < 1):  # Lightning would divide by it
        raise MakemoreError(f"--trainer.accumulate_grad_batches must be a whole number >= 1, got {batches}")


def follow_max_steps(config) -> None:
    """A schedule whose horizon is left unset (``total_steps: null``) ends with the run: at
    ``--trainer.max_steps`` or after ``--trainer.max_epochs`` epochs of ``data.batches_per_epoch``
    batches (over ``--trainer.accumulate_grad_batches`` per step), whichever comes first."""
    scheduler = config.model.get("lr_scheduler")
    args = getattr(scheduler, "init_args", None)
    if args is None or "total_steps" not in args or args.total_steps is not None:
        return
    steps, epochs = config.trainer.max_steps, config.trainer.get("max_epochs")
    ends = [steps] if steps is not None and steps >= 0 else []
    if epochs is not None and epochs >= 1:
        accumulate = config.trainer.get("accumulate_grad_batches") or 1
        ends.append(epochs * -(-config.data.batches_per_epoch // accumulate))
    if not ends:
        raise MakemoreError(
            "the learning-rate schedule ends with the run, which has no --trainer.max_steps or "
            "--trainer.max_epochs; set one, or --model.lr_scheduler.init_args.total_steps"
        )
    args.total_steps = min(ends)
