"""CharLM: one LightningModule around any hand-built net.

Every net honours one contract: ``net(idx (B, T)) -> logits``, ``(B, V)`` for window models
(the next token) or ``(B, T, V)`` for sequence models (every next token). Targets hold ``-1``
where nothing is to be predicted, so one loss serves both.

Training runs several optimizer steps per ``training_step`` call (the data module stacks
``fused_steps`` batches): Lightning's per-call machinery costs more than a step of these tiny
nets, and paying it once per block keeps ``fit`` as fast as a hand-written loop.
``global_step`` and ``max_steps`` still count optimizer steps.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torchmetrics import MeanMetric

from makemore.checks import positive
from makemore.data.packing import step_batches
from makemore.data.vocab import Vocabulary
from makemore.errors import MakemoreError, TrainingDiverged
from makemore.models.base import CharModel, check_fits_in_memory, nll
from makemore.nn.distributed import gathered, summed, world_size
from makemore.sampling.generate import sample
from makemore.training.averaging import AveragedNet
from makemore.training.checkpoint import RunCheckpoint, check_matches_data
from makemore.training.compiling import MODES, compiled_loss, pick_mode
from makemore.training.cuda_graph import decide, obstacles
from makemore.training.optim import SGD, parameter_groups
from makemore.training.private import count_optimizer_step
from makemore.training.step import OptimizerStep

DIVERGED_FACTOR = 100  # a loss above 100 * ln(vocab size) has diverged (uniform guessing: 1 * ln V)


class CharLM(L.LightningModule):
    """Trains, evaluates and samples a character-level language model.

    Args:
        net: the model family and its sizes; built as ``net(vocab_size, block_size)``.
        chars: the vocabulary's characters in id order (set from the data, saved in checkpoints).
        block_size: context length (set from the data).
        optimizer: built as ``optimizer(parameters)``; the lecture's hand-written SGD by default.
        lr_scheduler: built as ``lr_scheduler(optimizer)`` and stepped after every optimizer step.
        log_every_n_steps: how often the training loss and learning rate go to the logger.
        ema_decay: if set, evaluation, checkpoints' best weights and sampling use an
            exponential moving average of the weights with this decay (``makemore.training.averaging``).
        decay_vectors: if False, parameters with fewer than two dimensions (biases, LayerNorm
            gains and shifts) get no weight decay; only matrices and embedding tables do.
        pack: train a sequence model that can (``CharModel.pack_rows``) on packed rows, several
            items to a row, so no step pays for padding (``makemore.data.packing``): the same
            loss on the same batches, summed in another order. None: where the family
            measured faster packed (``CharModel.pack_by_default``: the Transformer and BoW).
        compile: train with the loss compiled by ``torch.compile`` (``makemore.training.compiling``).
        compile_mode: its mode; None: ``reduce-overhead`` (CUDA graphs) on a GPU, ``default`` elsewhere
            and under ``cuda_graph``.
        cuda_graph: capture each optimizer step as one CUDA graph and replay it
            (``makemore.training.cuda_graph``); None: when compiled on a GPU, if the run allows it.
    """

    def __init__(
        self,
        net: Callable[[int, int], CharModel],
        chars: str = "",
        block_size: int = 8,
        optimizer: OptimizerCallable = SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        log_every_n_steps: int = 100,
        ema_decay: float | None = None,
        decay_vectors: bool = True,
        pack: bool | None = None,
        compile: bool = False,
        compile_mode: str | None = None,
        cuda_graph: bool | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False  # K steps per call; see the module docstring
        self.log_every_n_steps = positive("log_every_n_steps", log_every_n_steps, "--model.")
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
        self.decay_vectors = decay_vectors
        self.pack = pack
        self.compiled, self.compile_mode = compile, compile_mode  # not self.compile: nn.Module.compile is a method
        if compile_mode is not None and compile_mode not in MODES:
            raise MakemoreError(f"--model.compile_mode {compile_mode!r} is not one of: {', '.join(MODES)}")
        self._train_loss = None  # the net's loss, compiled when asked (on_fit_start)
        self.cuda_graph = cuda_graph
        self.graph_steps = False  # decided in on_fit_start (uses_cuda_graph)
        self._step: OptimizerStep | None = None  # built when training starts
        self.accumulate = 1  # batches per optimizer step, from --trainer.accumulate_grad_batches (the CLI)
        self.scheduler_factory = lr_scheduler
        # Set from --trainer.gradient_clip_val / _algorithm by the CLI: clipped every optimizer step.
        self.gradient_clip_val: float | None = None
        self.gradient_clip_algorithm = "norm"
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()
        self._resumed_rng_states = None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(idx)

    @property
    def eval_net(self) -> nn.Module:
        """The net that is evaluated and sampled: the weight average if there is one."""
        return self.ema_net.net if self.ema_net is not None else self.net

    def on_fit_start(self) -> None:
        # The model summary rounds (76.6 K); the published table gives exact counts.
        count = sum(p.numel() for p in self.net.parameters())
        rank_zero_info(f"{type(self.net).__name__}: {count:,} parameters")
        # The training split, before the sanity check evaluates anything (the bigram counts it,
        # NewItems learns which items are known); the weight average's copy is told too.
        train = self.trainer.datamodule.dataset("train")
        for net in {id(net): net for net in (self.net, self.eval_net)}.values():
            net.fit_data(train)
        self.graph_steps = self.uses_cuda_graph(self.trainer)
        mode = pick_mode(self.compile_mode, self.device, self.graph_steps)
        self._train_loss = compiled_loss(self.net, mode) if self.compiled else self.net.loss
        packs = self.packs_batches and not self.fixed_shapes
        self.trainer.datamodule.pack_rows = self.net.pack_rows if packs else None

    def uses_cuda_graph(self, trainer: L.Trainer) -> bool:
        """Whether ``fit`` captures its steps (``--model.cuda_graph``); impossible when asked: one line."""
        if not self.net.trained_by_gradient:
            return False
        optimizer = self.configure_optimizers()
        optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
        scaled = isinstance(trainer.precision_plugin, MixedPrecision) and trainer.precision_plugin.scaler is not None
        found = obstacles(optimizer, trainer.world_size, scaled)
        return decide(self.cuda_graph, trainer.strategy.root_device, self.compiled, self.compile_mode, found)

    def on_train_start(self) -> None:
        # Lightning's and the CLI's objects live for the whole run, yet each full garbage
        # collection walks them all (~0.1 s each on this machine: some 250 MLP steps). Frozen, the
        # collector skips them.
        gc.collect()
        gc.freeze()
        states, self._resumed_rng_states = self._resumed_rng_states, None
        if states is not None and len(states) != self.trainer.world_size:
            rank_zero_warn(
                f"the checkpoint holds RNG states of {len(states)} processes, this run has "
                f"{self.trainer.world_size}: dropout masks will differ from an unbroken run"
            )
        elif states is not None:  # now, after everything that ran since the load
            # A copy: torch.set_rng_state crashes on a row of a larger tensor (torch 2.13).
            torch.set_rng_state(states[self.global_rank].cpu().clone())

        precision = self.trainer.precision_plugin
        scaler = precision.scaler if isinstance(precision, MixedPrecision) else None  # 16-mixed on a GPU
        if self.net.trained_by_gradient:  # after the checkpoint's optimizer state was loaded
            clip = (self.gradient_clip_val, self.gradient_clip_algorithm)
            self._step = OptimizerStep(self, self._train_loss, scaler, self.accumulate, clip, self.graph_steps)

    def on_train_end(self) -> None:
        gc.unfreeze()

    @property
    def fixed_shapes(self) -> bool:
        """Compiled or captured steps keep one shape: sequence batches stay untrimmed, unpacked."""
        return self.compiled or self.graph_steps

    @property
    def packs_batches(self) -> bool:
        if self.net.pack_rows is None:
            return False
        return self.net.pack_by_default if self.pack is None else self.pack

    def training_step(self, batch, batch_idx: int) -> None:
        batches = step_batches(batch, trim=not self.fixed_shapes)  # K batches, one optimizer step each
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        start = self.global_step
        steps = len(batches) if self.trainer.max_steps < 0 else min(len(batches), self.trainer.max_steps - start)
        if not self.net.trained_by_gradient:  # fitted in on_fit_start; the steps only count
            for _ in range(steps):
                count_optimizer_step(optimizer)
            return
        losses = []
        for x, y, positions in batches[:steps]:
            losses.append(self._step(x, y, positions))
            count_optimizer_step(optimizer)
            if scheduler is not None:
                scheduler.step()
        if self.ema_net is not None:
            self.ema_net.copy_buffers(self.net)
        self._stop_if_diverged(losses, start)
        if steps and start // self.log_every_n_steps != self.global_step // self.log_every_n_steps:
            loss = losses[-1]
            if world_size() > 1:  # the global batch's mean, as one process would log it
                loss_sum, count = self._step.sums
                total = summed(torch.stack([loss_sum, count.to(loss_sum.dtype)]))
                loss = total[0] / total[1]
            self.log("train_loss", loss, prog_bar=True, logger=False)
            # Straight to the loggers, at the optimizer step (Lightning would use the call count).
            metrics = {"train_loss": loss.item(), "lr": float(optimizer.param_groups[0]["lr"])}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.global_step)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # A run whose last step falls inside an epoch validates there too (Lightning validates at
        # the end of an epoch, or when asked to stop): no run ends without a validation.
        if 0 <= self.trainer.max_steps <= self.global_step:
            self.trainer.should_stop = True

    def _stop_if_diverged(self, losses: list[torch.Tensor], start: int) -> None:
        """A diverged loss stops training before any checkpoint can hold its weights (checked
        once per block: one sync, not one per step). Diverged: not finite, or above
        ``DIVERGED_FACTOR * ln(vocab size)``, hopelessly worse than guessing uniformly (with
        BatchNorm, weights can blow up for long while the loss stays finite)."""
        if not losses:
            return
        losses = torch.stack(losses)
        ok = torch.isfinite(losses) & (losses <= DIVERGED_FACTOR * math.log(self.vocab.size))
        if self.trainer.strategy.reduce_boolean_decision(bool(ok.all()), all=True):
            return
        bad = int((~ok).int().argmax())  # the first bad step here (0 if only another rank's was)
        ours = [c for c in self.trainer.checkpoint_callbacks if isinstance(c, RunCheckpoint)]
        last = ours[0].last_model_path if ours else ""
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"training diverged: the loss is {losses[bad].item()} at step {start + bad}; {kept}; "
            f"lower the learning rate (it is {float(self.optimizers().param_groups[0]['lr']):g}) and train again"
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Every rank's RNG state (dropout masks), so a resumed run draws what an unbroken one would.
        checkpoint["rng_states"] = gathered(torch.get_rng_state())
        if self._step is not None:
            self._step.plain_checkpoint(checkpoint)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], metric: MeanMetric, name: str) -> None:
        x, y = batch
        count = (y != -1).sum()
        metric.update(nll(self.eval_net(x), y), weight=count)
        self.log(name, metric, prog_bar=True)
        if self.global_step > 0:
            # The loggers' x-axis: optimizer steps (Lightning would count training_step calls).
            # Only after training steps, when it means something: validate/test of a checkpoint
            # start at step 0, and would print a "step 0.0" row in their results table.
            self.log("step", float(self.global_step), sync_dist=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_nll, "val_loss")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_nll, "test_loss")

    def generate(self, num_samples: int, max_length: int = 30, generator: torch.Generator | None = None) -> list[str]:
        """Sample items with incremental decoding (see ``makemore.sampling.generate.sample``)."""
        if self.eval_net.examples != "windows":
            max_length = min(max_length, self.block_size - 1)
        return sample(self.eval_net, self.vocab, num_samples, max_length=max_length, generator=generator)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resumed_rng_states = checkpoint.get("rng_states")
        check_matches_data(checkpoint.get("hyper_parameters", {}), self.vocab.chars, self.block_size)

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
