"""ModelCheckpoint that keeps ``last.ckpt`` current: every N steps, at every validation, at the
end and when a signal stops the run; written atomically, so a crash never costs the previous one.

Lightning's own ``save_last`` refreshes ``last.ckpt`` only when it also saved a new best
checkpoint, so after a validation that did not improve, ``last`` would lag behind and a resume
would repeat work. Also here: the checkpoint IO that writes atomically, and the callbacks that
remove the directory of a run that failed before its first step and hold the run's lock.
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
    """Keeps the best checkpoints by the monitored metric (``ModelCheckpoint``), and
    ``last.ckpt`` always current: written through ``Trainer.save_checkpoint`` every
    ``last_every_n_steps`` optimizer steps, after every validation, at the end, and when the run
    is stopped by Ctrl-C, SIGTERM or SIGUSR1 (the signal SLURM sends before it requeues a job).

    Args:
        last_every_n_steps: also rewrite ``last.ckpt`` every this many optimizer steps; 0: only
            at validations, at the end and when stopped.
        save_last: keep ``last.ckpt`` (False: only the best checkpoints).
        **kwargs: ``ModelCheckpoint``'s.
    """

    def __init__(self, last_every_n_steps: int = 1000, save_last: bool = True, **kwargs):
        super().__init__(save_last=False, **kwargs)  # Lightning's writes last.ckpt only with a new best
        if last_every_n_steps < 0:
            raise MakemoreError(
                f"--checkpoint.last_every_n_steps must be >= 0 (0: only at validations), got {last_every_n_steps}"
            )
        self.last_every_n_steps = last_every_n_steps
        self.keeps_last = bool(save_last)
        self._written_step = self._seen_step = -1
        self._stopped_by = None  # the signal that asked the run to stop, once seen
        self._stopped_said = False
        self._previous_handlers = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def _write_last(self, trainer, again: bool = False) -> None:
        """``last.ckpt`` now, unless this step's is written already (``again``: rewrite it)."""
        if not self.keeps_last or trainer.fast_dev_run or trainer.sanity_checking or self.dirpath is None:
            return
        if trainer.global_step == self._written_step and not again:
            return
        path = str(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        trainer.save_checkpoint(path, self.save_weights_only)
        self._written_step, self.last_model_path = trainer.global_step, path

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen_step = trainer.global_step
        self._stopped_by, self._stopped_said = None, False
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_handlers = {signal.SIGINT: signal.signal(signal.SIGINT, self._on_signal)}
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):  # else: SLURM's requeue (Lightning's)
            self._previous_handlers[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        # Only a note: the step being trained finishes, then the state is saved whole.
        # A second Ctrl-C gets the previous handler (Lightning's immediate shutdown).
        self._stopped_by = "interrupted" if signum == signal.SIGINT else signal.Signals(signum).name
        signal.signal(signum, self._previous_handlers.get(signum) or signal.SIG_DFL)
        then = "validating, then " if signum == signal.SIGINT else ""
        rank_zero_info(f"\n{self._stopped_by}: finishing this step, then writing last.ckpt ({then}again to quit now)")

    def _restore_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler or signal.SIG_DFL)
        self._previous_handlers = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == self._seen_step:  # a batch whose gradients wait for the next (accumulation)
            return
        self._seen_step = trainer.global_step
        # SIGTERM (kill, schedulers): Lightning notes it and ends the run right after this hook.
        asked = self._stopped_by or ("SIGTERM" if trainer.received_sigterm else None)
        stop = trainer.strategy.reduce_boolean_decision(asked is not None, all=False)  # any rank
        due = self.last_every_n_steps and trainer.global_step % self.last_every_n_steps == 0
        if stop or due:
            self._write_last(trainer)
        if not stop:
            return
        self._say_stopped(trainer, asked or "stopped by another process")
        if asked == "interrupted":
            trainer.should_stop = True  # Ctrl-C: validate, then end as a finished run
        elif asked != "SIGTERM":  # SIGUSR1 ends the run as Lightning ends it for SIGTERM
            raise SIGTERMException

    def _say_stopped(self, trainer, how: str) -> None:
        if self._stopped_said:  # a stop seen at a step's end, then Lightning's exception
            return
        self._stopped_said = True
        written = f"wrote {self.last_model_path}" if self.last_model_path else "no checkpoint written"
        rank_zero_info(f"{how} at step {trainer.global_step}: {written}; continue with --ckpt_path last")

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.state.fn == "fit":
            self._write_last(trainer, again=True)  # with this validation's results

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)  # where Lightning saves the best of an epoch's end
        self._write_last(trainer, again=True)  # and the best's score with it

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        self._write_last(trainer)
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, SIGTERMException) and trainer.world_size == 1:
            # Lightning's loops also stop for SIGTERM inside a validation or at an epoch's end,
            # before on_train_batch_end saw it. The weights are a whole step's.
            # (Not under DDP: the ranks may stop at different points, and a save waits for all.)
            if trainer.global_step > 0:
                self._write_last(trainer)
            self._say_stopped(trainer, self._stopped_by or "SIGTERM")
        elif not isinstance(exception, TrainingDiverged):  # never save the weights that diverged
            super().on_exception(trainer, pl_module, exception)
        self._restore_handlers()


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
