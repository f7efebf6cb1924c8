"""ModelCheckpoint that keeps ``last.ckpt`` current: every N steps, at every validation, and on
Ctrl-C or SIGTERM; written atomically, so a crash never costs the previous one.

Lightning refreshes ``last.ckpt`` only when it also saved a new best checkpoint, so after a
validation that did not improve, ``last`` would lag behind and a resume would repeat work.
Also here: the checkpoint IO that writes atomically, and the callback that removes the
directory of a run that failed before its first step.
"""

from __future__ import annotations

import errno
import shutil
import signal
import threading
from pathlib import Path

from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from makemore.digests import weights_digest
from makemore.errors import MakemoreError, TrainingDiverged
from makemore.files.atomic_io import save_atomically
from makemore.files.checkpoint_file import WEIGHTS_DIGEST, read_checkpoint
from makemore.files.runs import RunLock
from makemore.training.private import last_saved_step, saves_at_epoch_end, skips_saving, write_last


def check_matches_data(hparams: dict, chars: str, block_size: int) -> None:
    """A checkpoint's vocabulary and block size are the data's, or one line says what to pass."""
    saved = hparams.get("chars", chars)
    if saved != chars:
        raise MakemoreError(
            f"the checkpoint's vocabulary {saved!r} differs from the data's {chars!r}; "
            "pass the --data.path the checkpoint was trained on"
        )
    saved = hparams.get("block_size", block_size)
    if saved != block_size:
        raise MakemoreError(
            f"the checkpoint was built for block_size={saved} but the data gives {block_size}; "
            f"pass --data.block_size {saved} (and the data it was trained on)"
        )


class RunCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoints by the monitored metric, and ``last.ckpt`` always current.

    Args:
        last_every_n_steps: also rewrite ``last.ckpt`` every this many optimizer steps (at the
            end of the ``training_step`` block that reaches the multiple); 0: only at
            validations and on Ctrl-C or SIGTERM.
        **kwargs: ``ModelCheckpoint``'s.
    """

    def __init__(self, last_every_n_steps: int = 1000, **kwargs):
        super().__init__(**kwargs)
        if last_every_n_steps < 0:
            raise MakemoreError(
                f"--checkpoint.last_every_n_steps must be >= 0 (0: only at validations), got {last_every_n_steps}"
            )
        self.last_every_n_steps = last_every_n_steps
        self._interval = 0  # which multiple of last_every_n_steps was last saved
        self._interrupted = False
        self._stopped_said = False  # the stop is told once (a block's end, then Lightning's exception)
        self._previous_handler = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def _interval_of(self, step: int) -> int:
        return step // self.last_every_n_steps if self.last_every_n_steps else 0

    def _write_last(self, trainer, between_validations: bool = False) -> None:
        if trainer.fast_dev_run:  # Lightning's promise: a dev run writes no checkpoint
            return
        write_last(self, trainer, keep_step_unsaved=between_validations)
        self._interval = self._interval_of(trainer.global_step)

    def on_train_start(self, trainer, pl_module) -> None:
        self._interval = self._interval_of(trainer.global_step)
        self._interrupted = False
        self._stopped_said = False
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        # Only a flag: the block being trained finishes, then the state is saved whole.
        # A second Ctrl-C gets the previous handler (Lightning's immediate shutdown).
        self._interrupted = True
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)
        rank_zero_info("\nCtrl-C: finishing this block of steps, then writing last.ckpt (again to quit now)")

    def _restore_handler(self) -> None:
        if self._previous_handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_handler)
        self._previous_handler = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # SIGTERM (kill, schedulers): Lightning notes it and ends the run right after this hook.
        terminated = trainer.received_sigterm
        stop = trainer.strategy.reduce_boolean_decision(self._interrupted or terminated, all=False)  # any rank
        due = self._interval_of(trainer.global_step) != self._interval
        if (stop or due) and self.save_last and last_saved_step(self) != trainer.global_step:
            self._write_last(trainer, between_validations=True)
        if stop:
            self._say_stopped(trainer, "SIGTERM" if terminated else "interrupted")
            trainer.should_stop = not terminated  # Ctrl-C: validate, then end as a finished run

    def _say_stopped(self, trainer, how: str) -> None:
        # SIGTERM seen at a block's end is told there; Lightning then raises SIGTERMException
        # right after that hook, which reaches on_exception: told already, not again.
        if self._stopped_said:
            return
        self._stopped_said = True
        written = f"wrote {self.last_model_path}" if self.last_model_path else "no checkpoint written"
        rank_zero_info(f"{how} at step {trainer.global_step}: {written}; continue with --ckpt_path last")

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.fast_dev_run:  # Lightning's end-of-training save forgets that a dev run saves nothing
            super().on_train_end(trainer, pl_module)
        self._restore_handler()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, SIGTERMException) and trainer.world_size == 1:
            # Lightning's loops also stop for SIGTERM between blocks: in a validation or at an
            # epoch's end, before on_train_batch_end saw it. The weights are a whole step's.
            # (Not under DDP: the ranks may stop at different points, and a save waits for all.)
            if self.save_last and trainer.global_step > 0 and last_saved_step(self) != trainer.global_step:
                self._write_last(trainer)
            self._say_stopped(trainer, "SIGTERM")
        elif not isinstance(exception, TrainingDiverged):  # never save the weights that diverged
            super().on_exception(trainer, pl_module, exception)
        self._restore_handler()

    def _refresh_last(self, trainer) -> None:
        # Skipped when this step was already saved (a new best also rewrote last.ckpt).
        if self.save_last and not skips_saving(self, trainer):
            self._write_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if saves_at_epoch_end(self, trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not saves_at_epoch_end(self, trainer):
            self._refresh_last(trainer)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with atomic local writes that store a digest of the weights,
    and loads that run no code and check that digest (remote URLs keep Lightning's path)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        checkpoint[WEIGHTS_DIGEST] = weights_digest(checkpoint["state_dict"])
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            save_atomically(checkpoint, path)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise MakemoreError(
                f"no space left on the disk to write {path}; the previous {Path(path).name} (if any) is kept "
                "whole; free some space and continue with --ckpt_path last"
            ) from None

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return read_checkpoint(path)


class ForgetFailedStart(Callback):
    """Removes a fresh run directory when the run fails before its first optimizer step: it holds
    nothing worth keeping (no checkpoint, no curve), only a trace of a start that did not happen."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.global_step == 0 and trainer.is_global_zero and not any(self.run_dir.glob("*.ckpt")):
            shutil.rmtree(self.run_dir, ignore_errors=True)


class HoldRunLock(Callback):
    """Holds the run directory's lock from before the run starts until it ends (``teardown``
    runs after a failure too): a second fit writing into the same run is refused."""

    def __init__(self, run_dir: Path):
        self.lock = RunLock(run_dir)
        self.lock.acquire()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self.lock.release()
