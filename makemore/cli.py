"""``python -m makemore {fit,validate,test,predict}``: LightningCLI wired for makemore."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from pathlib import Path

from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only

from makemore.config_files import with_bases
from makemore.data.datamodule import NamesDataModule
from makemore.errors import MakemoreError
from makemore.files.checkpoint_file import read_checkpoint
from makemore.files.runs import (
    check_writable,
    claim_run_dir,
    evaluation_checkpoint,
    last_checkpoint,
    next_run_dir,
)
from makemore.help import help_or_none
from makemore.models import resolve
from makemore.training import from_checkpoint, loggers, run_length
from makemore.training.checkpoint import ForgetFailedStart, HoldRunLock, RunCheckpoint
from makemore.training.module import CharLM
from makemore.training.quiet import quiet
from makemore.training.show_samples import SampleCallback

# Lightning's bar redraws after every step by default, which costs a small net a tenth of its step.
PROGRESS_REFRESH = 10

TRAINER_DEFAULTS = {
    "max_steps": 200_000,
    "log_every_n_steps": 50,
    "enable_model_summary": False,  # CharLM prints the exact parameter count; --verbose shows the table
    "use_distributed_sampler": False,  # the data module shards batches across ranks itself
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "checkpoints", "default_hp_metric": False},
    },
}


# Each run has a directory of its own, which holds the run's config.yaml before Lightning's
# checkpoint callback looks at it (and a resumed run's checkpoints): nothing to warn about.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")

COMMANDS = {
    "fit": "Train a model from a config: writes checkpoints/<config>-<n>/ and ends naming the best checkpoint.",
    "validate": "Evaluate a checkpoint on the validation split (default: the newest run's best checkpoint).",
    "test": "Evaluate a checkpoint on the test split (default: the newest run's best checkpoint).",
}


class MakemoreCLI(LightningCLI):
    """Links the vocabulary and block size from the data into the model, and gives every fit
    its own directory ``<checkpoint_root>/<run_name>-<n>/`` holding checkpoints, TensorBoard
    events and the resolved config."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.chars", "model.chars", apply_on="instantiate")
        parser.link_arguments("data.block_size", "model.block_size", apply_on="instantiate")
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="name of the run directory (default: the config file's name)",
        )
        parser.add_argument(
            "--base",
            type=str | None,
            default=None,
            # A config file's key, applied before parsing (with_bases): never shown, never dumped
            # (--print_config, a run's config.yaml), so a printed config runs from any folder.
            help=argparse.SUPPRESS,
        )
        parser.add_argument(
            "--checkpoint_root", type=str, default="checkpoints", help="folder that holds one directory per run"
        )
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleCallback, "samples")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_loss",
                "checkpoint.filename": "best-{step}-{val_loss:.4f}",
                "checkpoint.save_last": True,
                # A run's own directory holds one last.ckpt: a resume rewrites it, never last-v1.ckpt.
                "checkpoint.enable_version_counter": False,
            }
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's, less ``predict``: ``python -m makemore predict`` is makemore's own command."""
        return {name: skip for name, skip in LightningCLI.subcommands().items() if name in COMMANDS}

    def parse_arguments(self, parser, args) -> None:
        args = loggers.with_logger_dirs(with_bases(sys.argv[1:] if args is None else list(args)))
        self.started = time.monotonic()
        self.config = parser.parse_args(args)
        self.ckpt_path, self.checkpoint, self.resume_in_place = None, None, False
        subcommand = self.config.get("subcommand")
        if subcommand not in ("fit", "validate", "test"):
            return
        config = self.config[subcommand]
        self.resume_in_place = subcommand == "fit" and config.ckpt_path == "last"
        self.ckpt_path = _find_checkpoint(subcommand, config)
        # LightningCLI would next merge the checkpoint's saved hyperparameters into the config
        # and instantiate any class path among them (a hostile file can name os.system as the
        # optimizer): it sees no path, and the checkpoint decides only checked plain values.
        config.ckpt_path = None
        if self.ckpt_path is None:
            return
        self.checkpoint = read_checkpoint(self.ckpt_path)  # missing, truncated, foreign, damaged: one line
        print(f"checkpoint: {self.ckpt_path}", file=sys.stderr)
        if subcommand == "fit":
            from_checkpoint.check_resume(config, self.checkpoint, self.ckpt_path)
        else:
            settings = from_checkpoint.evaluation_settings(config, self.checkpoint, self.ckpt_path)
            if settings["model"]["net"]["class_path"] != config.model.net.class_path:
                config.model.net = None  # another family: none of the config's sizes apply
            self.config = parser.parse_object({subcommand: settings}, self.config)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.base = None  # applied already: the run's config.yaml is whole on its own
        if self.subcommand in ("fit", "validate", "test"):
            config.ckpt_path = None if self.ckpt_path is None else str(self.ckpt_path)  # checked in parse_arguments
        _match_examples_to_net(config)
        if self.subcommand == "fit":
            run_length.check_steps(config)
            _checkpointing_off(config)
        run_length.follow_max_steps(config)
        root = _runs_root(config)
        name = config.run_name or _config_stem(config) or "run"
        if self.subcommand in ("validate", "test"):
            self.save_config_callback = None  # only a fit has a run directory to save it in
            if _is_default_logger(config.trainer.logger):
                config.trainer.logger = False  # an evaluation is no run: nothing for TensorBoard to list
            return
        if self.subcommand != "fit":
            self.save_config_callback = None
            return
        self.new_run_dir = None
        if self.resume_in_place:  # --ckpt_path last: the newest run of this name
            run_dir = Path(config.ckpt_path).parent
            check_writable(run_dir)
        else:
            run_dir = next_run_dir(root, name)
            # Other ranks (DDP) claim nothing: Lightning hands them rank 0's checkpoint folder.
            self.new_run_dir = run_dir if rank_zero_only.rank == 0 else None
        # The run directory reaches the Trainer and the checkpoints when they are built, not
        # through the config: the run's saved config.yaml must not send a later run into it.
        # Spelled as one absolute path, so a resume that names the root another way (relative,
        # absolute, through a link) still finds its own last.ckpt in the checkpoint's state.
        self.run_dir, self.shown_run_dir = Path(os.path.realpath(run_dir)), run_dir
        loggers.log_into(config.trainer.logger, run_dir)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as err:  # jsonargparse's account of a class it could not build
            missing = re.search(r"class_path '([^']+)':\s*(Requirement '[^']+' not met\.[^\n]*)", str(err))
            if missing is not None:
                raise MakemoreError(f"{missing[1]}: {missing[2]}") from None
            # A value a constructor refused (torch's optimizers and layers check their settings so)
            raise MakemoreError(f"{' '.join(str(err).split())}; fix that setting") from None

    def instantiate_trainer(self, **kwargs):
        """The Trainer of the config; a fit's files go to its run directory, and its progress bar,
        unless the config has one or none, redraws every ``PROGRESS_REFRESH`` steps."""
        trainer = self.config_init[self.subcommand]["trainer"] if self.subcommand else self.config_init["trainer"]
        if self.subcommand == "fit":
            kwargs.setdefault("default_root_dir", str(self.run_dir))
            callbacks = [*(trainer.get("callbacks") or []), *kwargs.get("callbacks", [])]
            has_bar = any(isinstance(c, ProgressBar) for c in callbacks)
            if trainer.get("enable_progress_bar") is not False and not has_bar:
                kwargs["callbacks"] = [*callbacks, TQDMProgressBar(refresh_rate=PROGRESS_REFRESH)]  # replaces the list
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        """LightningCLI's hook after ``fit``: a run that validated a subset of the validation
        split ends with the whole of it (the figure to report); then one line says where the best
        checkpoint is, what it scored, after how many steps and how long."""
        whole = self.trainer.limit_val_batches == 1.0 and isinstance(self.trainer.limit_val_batches, float)
        if whole and self.datamodule.validates_a_subset and self.trainer.state.status == "finished":
            rank_zero_info("validating the whole validation split (during fit: data.val_items of it)")
            [result] = self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
            rank_zero_info(f"whole validation split: val_loss {result['val_loss']:.4f}")
        ours = [c for c in self.trainer.checkpoint_callbacks if isinstance(c, RunCheckpoint)]
        best = ours[0] if ours and ours[0].best_model_path else None
        metrics = {"hp/val_loss": self.trainer.callback_metrics.get("val_loss")}
        if best is not None and best.best_model_score is not None:
            metrics["hp/best_val_loss"] = best.best_model_score
        self._log_final(metrics)
        if not self.trainer.is_global_zero:
            return
        took = f"after {self.trainer.global_step:,} steps in {_duration(time.monotonic() - self.started)}"
        if best is None:
            print(f"no checkpoint written; {took}", file=sys.stderr)
            return
        path = Path(best.best_model_path)
        shown = Path(self.shown_run_dir) / path.name if path.parent == self.run_dir else path
        score = f" (val_loss {float(best.best_model_score):.4f})" if best.best_model_score is not None else ""
        print(f"best: {shown}{score} {took}", file=sys.stderr)

    def after_test(self) -> None:
        self._log_final({"hp/test_loss": self.trainer.callback_metrics.get("test_loss")})

    def _log_final(self, metrics: dict) -> None:
        """The run's final figures as TensorBoard hparam metrics: its HParams tab compares runs by them."""
        metrics = {name: float(value) for name, value in metrics.items() if value is not None}
        params = {**self.datamodule.hparams_initial, **self.model.hparams_initial}
        for logger in self.trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and metrics:
                logger.log_hyperparams(params, metrics)
                logger.finalize("success")  # the run has ended: its events file is flushed and closed

    def after_instantiate_classes(self) -> None:
        if self.checkpoint is not None:  # the data is the file the checkpoint was trained on
            from_checkpoint.check_data(self.checkpoint, self.datamodule.fingerprint, self.ckpt_path)
        if self.subcommand != "fit":
            return
        self.model.check_optimizer()  # a bad optimizer setting fails here, before any file is written
        if self.trainer.fast_dev_run:  # Lightning writes no checkpoint or log: no run to keep
            print("fast_dev_run: a trial of the loops; nothing is written", file=sys.stderr)
            return
        for callback in self.trainer.checkpoint_callbacks:  # the run's own and any the user adds
            if callback.dirpath is None:  # else: its --...dirpath as given
                callback.dirpath = str(self.run_dir)
        # Claimed only now, so a run that fails to start leaves no empty directory behind.
        if self.new_run_dir is not None:
            claim_run_dir(self.new_run_dir)
            self.trainer.callbacks.append(ForgetFailedStart(self.new_run_dir))
        if rank_zero_only.rank == 0:  # the other ranks (DDP) write through rank 0
            self.trainer.callbacks.append(HoldRunLock(self.run_dir))
            print(f"run directory: {self.shown_run_dir}", file=sys.stderr)


def _duration(seconds: float) -> str:
    """``6m03s``, ``1h02m03s``, ``12s``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _find_checkpoint(subcommand: str, config) -> Path | None:
    """The file ``--ckpt_path`` means: ``last`` is a run's last.ckpt (never a file called
    ``last``); ``validate``/``test`` with none, ``best`` or ``last`` take the newest run's."""
    name = config.run_name or _config_stem(config) or "run"
    if subcommand == "fit":
        if config.ckpt_path is None:
            return None
        return last_checkpoint(_runs_root(config), name) if config.ckpt_path == "last" else Path(config.ckpt_path)
    if config.ckpt_path in (None, "best", "last"):
        return evaluation_checkpoint(_runs_root(config), name, last=config.ckpt_path == "last")
    return Path(config.ckpt_path)


def _runs_root(config) -> str:
    """The folder of run directories: ``--checkpoint_root``, or ``--trainer.default_root_dir``
    (Lightning's name for it) when that is given instead."""
    given = config.trainer.get("default_root_dir")
    if given is None or str(given) == config.checkpoint_root:
        return config.checkpoint_root
    if config.checkpoint_root != "checkpoints":
        raise MakemoreError(
            f"--trainer.default_root_dir {given} and --checkpoint_root {config.checkpoint_root} name two "
            "folders for the runs; pass one of them"
        )
    return str(given)


def _is_default_logger(logger) -> bool:
    return logger == TRAINER_DEFAULTS["logger"] or (
        getattr(logger, "class_path", "") == TRAINER_DEFAULTS["logger"]["class_path"]
        and str(logger.init_args.get("save_dir")) == "checkpoints"
    )


def _checkpointing_off(config) -> None:
    """``--trainer.enable_checkpointing false``: the run's checkpoint callback stays (Lightning
    would refuse it alongside the flag) but writes nothing, not even ``last.ckpt``."""
    if config.trainer.enable_checkpointing is False:
        config.trainer.enable_checkpointing = None
        config.checkpoint.save_top_k, config.checkpoint.save_last = 0, False
        config.checkpoint.last_every_n_steps = 0


def _match_examples_to_net(config) -> None:
    """Give the data the examples the net reads (windows or sequences), or refuse a mismatch."""
    spec = config.model.net.clone().as_dict()
    wanted = resolve(spec["class_path"], "model.net").reads(dict(spec.get("init_args") or {}))
    if config.data.examples is None:
        config.data.examples = wanted
    elif config.data.examples != wanted:
        raise MakemoreError(
            f"{spec['class_path']} reads {wanted} but data.examples is {config.data.examples}; "
            f"set --data.examples {wanted} or leave it unset"
        )


def _config_stem(config) -> str | None:
    paths = config.get("config") or []
    return Path(str(paths[-1])).stem if paths else None


def run(args: list[str] | None = None, subcommand: bool = True) -> MakemoreCLI:
    """Parse ``args`` (default: the command line), run the subcommand and return the CLI.

    With ``subcommand=False`` the args hold no subcommand: the CLI only builds the data, model
    and trainer (tests and benchmarks use this to build a config's model).
    """
    return MakemoreCLI(
        CharLM,
        NamesDataModule,
        args=args,
        run=subcommand,
        trainer_defaults=TRAINER_DEFAULTS,
        auto_configure_optimizers=False,  # the model's optimizer and schedule are model.* keys
        # main() turns a parse error into one line; fit/validate/test --help say what they do
        parser_kwargs={
            "exit_on_error": False,
            "prog": "python -m makemore",
            **{name: {"description": text} for name, text in COMMANDS.items()},
        },
        save_config_kwargs={"overwrite": True},
    )


def main(args: list[str] | None = None) -> None:
    """The ``makemore`` command; a user error prints one line and exits with status 2.
    ``--verbose`` before the command lets Lightning's own messages through (see :func:`quiet`)."""
    argv = sys.argv[1:] if args is None else list(args)
    if help_or_none(argv):
        return
    verbose = argv[:1] == ["--verbose"]
    argv = argv[verbose:]
    quiet(verbose)
    try:
        if argv[:1] == ["predict"]:
            from makemore.inference.predict import command as predict  # a checkpoint alone: no config, no data

            predict(argv[1:])
            return
        if verbose and argv[:1] and argv[0] in COMMANDS:  # and Lightning's model summary, unless a flag says no
            argv = [argv[0], "--trainer.enable_model_summary", "true", *argv[1:]]
        run(argv)
    except MakemoreError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except (MisconfigurationException, ModuleNotFoundError) as err:
        # Lightning's word on a flag it cannot apply, or a package a named class needs (a logger's)
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    except ArgumentError as err:
        command = " ".join(["python -m makemore", *[a for a in argv[:1] if a in ("fit", "validate", "test")]])
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        detail = f" ({lines[-1]})" if len(lines) > 1 else ""
        print(f"error: {lines[0] if lines else 'bad arguments'}{detail}; see {command} --help", file=sys.stderr)
        raise SystemExit(2) from None
