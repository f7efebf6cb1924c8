"""CharLM: one LightningModule around any hand-built net.

Every net honours one contract: ``net(idx (B, T)) -> logits``, ``(B, V)`` for window models
(the next token) or ``(B, T, V)`` for sequence models (every next token). Targets hold ``-1``
where nothing is to be predicted, so one loss serves both.

Training is Lightning's automatic optimization: ``training_step`` returns one batch's loss, and
the Trainer does the rest (zero-grad, backward, clipping, accumulation, precision, the DDP
gradient mean, the optimizer and schedule steps), so every Trainer flag works as documented.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torchmetrics import MeanMetric

from makemore.data.packing import pack, trim
from makemore.data.tokens import IGNORE
from makemore.data.vocab import Vocabulary
from makemore.errors import MakemoreError, TrainingDiverged
from makemore.files.checkpoint_file import read_checkpoint
from makemore.models.base import CharModel, check_fits_in_memory, nll
from makemore.nn.distributed import gathered
from makemore.sampling.generate import sample
from makemore.training.averaging import AveragedNet
from makemore.training.checkpoint import check_matches_data
from makemore.training.compiling import MODES, compiled_loss
from makemore.training.factories import describe
from makemore.training.from_checkpoint import module_settings
from makemore.training.optim import SGD, parameter_groups

DIVERGED_FACTOR = 100  # a loss above 100 * ln(vocab size) has diverged (uniform guessing: 1 * ln V)
DIVERGENCE_CHECK_EVERY = 100  # steps between two looks at the watch (each waits for the device)


class CharLM(L.LightningModule):
    """Trains, evaluates and samples a character-level language model.

    Args:
        net: the model family and its sizes; built as ``net(vocab_size, block_size)``.
        chars: the vocabulary's characters in id order (set from the data, saved in checkpoints).
        block_size: context length (set from the data).
        optimizer: built as ``optimizer(parameters)``; the lecture's hand-written SGD by default.
        lr_scheduler: built as ``lr_scheduler(optimizer)`` and stepped after every optimizer step.
        ema_decay: if set, evaluation, checkpoints' best weights and sampling use an
            exponential moving average of the weights with this decay (``makemore.training.averaging``).
        decay_vectors: if False, parameters with fewer than two dimensions (biases, LayerNorm
            gains and shifts) get no weight decay; only matrices and embedding tables do.
        pack: train a sequence model that can (``CharModel.pack_rows``) on packed rows, several
            items to a row, so no step pays for padding (``makemore.data.packing``): the same
            loss on the same batches, summed in another order. None: where the family
            measured faster packed (``CharModel.pack_by_default``: the Transformer and BoW).
        compile: train with the net's loss compiled by ``torch.compile`` (``makemore.training.compiling``).
        compile_mode: ``torch.compile``'s mode (``reduce-overhead``: CUDA graphs); None: its default.
    """

    def __init__(
        self,
        net: Callable[[int, int], CharModel],
        chars: str = "",
        block_size: int = 8,
        optimizer: OptimizerCallable = SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        ema_decay: float | None = None,
        decay_vectors: bool = True,
        pack: bool | None = None,
        compile: bool = False,
        compile_mode: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        for key in ("net", "optimizer", "lr_scheduler"):  # plain settings, not pickled objects
            self.hparams[key] = describe(self.hparams[key])
        self.vocab = Vocabulary(chars)
        self.block_size = block_size
        # Weights, gradients and two optimizer moments (Adam's), and a weight average: refused
        # before anything is allocated if the machine cannot hold them.
        check_fits_in_memory(net, self.vocab.size, block_size, copies=4 + (ema_decay is not None))
        self.net = net(self.vocab.size, block_size)
        if not isinstance(self.net, CharModel):
            raise MakemoreError(f"model.net {type(self.net).__name__} is not a makemore model (makemore.models)")
        if ema_decay is not None and not self.net.trained_by_gradient:
            raise MakemoreError("the bigram is fitted by counting: no steps to average; drop --model.ema_decay")
        self.ema_net = AveragedNet(self.net, ema_decay) if ema_decay is not None else None
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.decay_vectors = decay_vectors
        self.pack = pack
        self.compiled, self.compile_mode = compile, compile_mode  # not self.compile: nn.Module.compile is a method
        if compile_mode is not None and compile_mode not in MODES:
            raise MakemoreError(f"--model.compile_mode {compile_mode!r} is not one of: {', '.join(MODES)}")
        self._train_loss = None  # the net's loss, compiled when asked (on_fit_start)
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()
        self._resumed_rng_states = None
        self._first_bad = None  # (step, loss) of the first diverged loss, on the device; -1: none yet

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, strict: bool = True, **kwargs) -> CharLM:
        """The module a checkpoint holds, built from its plain settings alone
        (``from_checkpoint.module_settings``): Lightning's own loader imports the class paths a file
        names, and a checkpoint may come from anyone. ``kwargs`` replace settings (``compile=True``);
        run-time choices are never taken from the file. ``map_location``: the device to put it on."""
        checkpoint = read_checkpoint(checkpoint_path)
        model = cls(**{**module_settings(checkpoint, checkpoint_path), **kwargs})
        model.load_state_dict(checkpoint["state_dict"], strict=strict)
        return model.to(map_location) if map_location is not None else model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(idx)

    @property
    def eval_net(self) -> nn.Module:
        """The net that is evaluated and sampled: the weight average if there is one."""
        return self.ema_net.net if self.ema_net is not None else self.net

    @property
    def packs_batches(self) -> bool:
        """Training batches are packed (a compiled loss keeps one shape: padded, untrimmed)."""
        if self.net.pack_rows is None or self.compiled:
            return False
        return self.net.pack_by_default if self.pack is None else self.pack

    def on_fit_start(self) -> None:
        # The model summary rounds (76.6 K); the published table gives exact counts.
        count = sum(p.numel() for p in self.net.parameters())
        rank_zero_info(f"{type(self.net).__name__}: {count:,} parameters")
        # The training split, before the sanity check evaluates anything (the bigram counts it,
        # NewItems learns which items are known); the weight average's copy is told too.
        data = self.trainer.datamodule
        if getattr(data, "examples", self.net.examples) != self.net.examples:
            raise MakemoreError(
                f"{type(self.net).__name__} reads {self.net.examples} but the data module makes {data.examples}; "
                f"build it with examples={self.net.examples!r}"
            )
        train = data.dataset("train")
        for net in {id(net): net for net in (self.net, self.eval_net)}.values():
            net.fit_data(train)
        self._train_loss = compiled_loss(self.net, self.compile_mode) if self.compiled else self.net.loss

    def on_train_start(self) -> None:
        # Lightning's and the CLI's objects live for the whole run, yet each full garbage
        # collection walks them all (~0.1 s each on this machine: some 250 MLP steps). Frozen, the
        # collector skips them.
        gc.collect()
        gc.freeze()
        self._first_bad = (torch.tensor(-1, device=self.device), torch.tensor(0.0, device=self.device))
        self._restore_rng_states()

    def on_train_end(self) -> None:
        gc.unfreeze()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if not self.net.trained_by_gradient:  # fitted in on_fit_start; its steps only count
            return None
        x, y = batch
        positions = None
        if self.packs_batches:
            x, y, positions = pack(x, y, self.net.pack_rows)
        elif not self.compiled:
            x, y = trim(x, y)
        if self.trainer.world_size > 1:
            loss, batch_mean = self._global_batch_loss(x, y, positions)
        else:
            loss = batch_mean = self._train_loss(x, y, "mean", positions)
        self._watch_divergence(batch_mean)
        # Logged on the steps the loggers write (every trainer.log_every_n_steps): self.log costs
        # some 0.3 ms, a tenth of a small net's step.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train_loss", batch_mean, prog_bar=True)
        return loss

    def _global_batch_loss(self, x, y, positions) -> tuple[torch.Tensor, torch.Tensor]:
        """Under DDP, which averages the ranks' gradients: this rank's share of the mean loss over
        the global batch (ranks hold different numbers of targets when items differ in length),
        so the gradient is the one a single process with the whole batch computes; and that mean."""
        loss_sum = self._train_loss(x, y, "sum", positions)
        count = (y != IGNORE).sum().to(loss_sum.dtype)
        totals = self.trainer.strategy.reduce(torch.stack([loss_sum.detach(), count]), reduce_op="sum")
        return loss_sum * self.trainer.world_size / totals[1], totals[0] / totals[1]

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema_net is not None:
            self.ema_net.update(list(self.net.parameters()))
            self.ema_net.copy_buffers(self.net)

    def _watch_divergence(self, loss: torch.Tensor) -> None:
        """Notes the first diverged loss on the device (no wait for it): not finite, or above
        ``DIVERGED_FACTOR * ln(vocab size)``, hopelessly worse than guessing uniformly (with
        BatchNorm, weights can blow up for long while the loss stays finite)."""
        step, worst = self._first_bad
        first = ~(loss.detach() <= DIVERGED_FACTOR * math.log(self.vocab.size)) & (step < 0)
        self._first_bad = (torch.where(first, self.global_step, step), torch.where(first, loss.detach(), worst))

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.global_step % DIVERGENCE_CHECK_EVERY == 0:
            self._stop_if_diverged()
        # A run whose last step falls inside an epoch validates there too (Lightning validates at
        # the end of an epoch, or when asked to stop): no run ends without a validation.
        if 0 <= self.trainer.max_steps <= self.global_step:
            self.trainer.should_stop = True

    def _stop_if_diverged(self) -> None:
        """A diverged run stops before any checkpoint can hold its weights: checked every
        ``DIVERGENCE_CHECK_EVERY`` steps and before every checkpoint (not a wait for the device
        at every step)."""
        if self._first_bad is None:  # not training
            return
        step, loss = self._first_bad
        if self.trainer.strategy.reduce_boolean_decision(int(step) < 0, all=True):
            return
        last = next((c.last_model_path for c in self.trainer.checkpoint_callbacks if c.last_model_path), "")
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        shown = f"{loss.item()} at step {int(step)}" if int(step) >= 0 else "diverged on another process"
        raise TrainingDiverged(
            f"training diverged: the loss is {shown}; {kept}; lower the learning rate "
            f"(it is {float(self.optimizers().param_groups[0]['lr']):g}) and train again"
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self._stop_if_diverged()
        # Every rank's RNG states (dropout masks), so a resumed run draws what an unbroken one would.
        checkpoint["rng_states"] = self._from_every_rank(torch.get_rng_state())
        if self.device.type == "cuda":
            checkpoint["cuda_rng_states"] = self._from_every_rank(torch.cuda.get_rng_state(self.device))

    def _from_every_rank(self, state: torch.Tensor) -> torch.Tensor:
        """``(ranks, *state.shape)`` on the host: every rank's ``state``, in rank order (gathered on
        the module's device, which the process group's backend serves)."""
        return gathered(state.to(self.device)).cpu()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resumed_rng_states = (checkpoint.get("rng_states"), checkpoint.get("cuda_rng_states"))
        check_matches_data(checkpoint.get("hyper_parameters", {}), self.vocab.chars, self.block_size)

    def _restore_rng_states(self) -> None:
        """The resumed run's RNG states, now, after everything that ran since the load."""
        (states, cuda_states), self._resumed_rng_states = self._resumed_rng_states or (None, None), None
        if states is None:
            return
        if len(states) != self.trainer.world_size:
            rank_zero_warn(
                f"the checkpoint holds RNG states of {len(states)} processes, this run has "
                f"{self.trainer.world_size}: dropout masks will differ from an unbroken run"
            )
            return
        # A copy: torch.set_rng_state crashes on a row of a larger tensor (torch 2.13).
        torch.set_rng_state(states[self.global_rank].clone())
        if cuda_states is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_states[self.global_rank].clone(), self.device)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], metric: MeanMetric, name: str) -> None:
        x, y = batch
        count = (y != IGNORE).sum()
        metric.update(nll(self.eval_net(x), y), weight=count)
        self.log(name, metric, prog_bar=True)
        if self.trainer.state.fn == "fit":
            # The loggers' x-axis: the optimizer steps trained (Lightning's default for a validation
            # is the index of the last step, one less). "max": a mean weighted by batch sizes
            # rounds in float32 (200,000 became 199,999.98).
            self.log("step", float(self.global_step), reduce_fx="max")

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_nll, "val_loss")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_nll, "test_loss")

    def generate(self, num_samples: int, max_length: int = 30, generator: torch.Generator | None = None) -> list[str]:
        """Sample items with incremental decoding (see ``makemore.sampling.generate.sample``)."""
        if self.eval_net.examples != "windows":
            max_length = min(max_length, self.block_size - 1)
        was_training = self.training
        self.eval()  # no dropout in a sample
        try:
            return sample(self.eval_net, self.vocab, num_samples, max_length=max_length, generator=generator)
        finally:
            self.train(was_training)

    def configure_optimizers(self):
        if not self.net.trained_by_gradient:
            return None  # Lightning then runs without an optimizer
        try:
            optimizer = self.optimizer_factory(parameter_groups(self.net, self.decay_vectors))
            scheduler = self.scheduler_factory(optimizer) if self.scheduler_factory is not None else None
        except ValueError as err:  # torch's optimizers and ours check their settings so
            raise MakemoreError(f"{err}; fix --model.optimizer or --model.lr_scheduler") from None
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def check_optimizer(self) -> None:
        """Build the optimizer and schedule once and throw them away: bad settings fail now."""
        self.configure_optimizers()
