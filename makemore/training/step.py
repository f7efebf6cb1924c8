"""One optimizer step of ``fit``: forward, backward, clipping, the update, the weight average.

``CharLM.training_step`` runs a block of these per call. The step is one function of the batch,
so that a CUDA graph can capture it whole (``makemore.training.cuda_graph``); what it needs is
found once, when training starts (after a checkpoint's optimizer state was loaded).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch

from makemore.data.packing import chunks
from makemore.nn.distributed import sum_gradients_and_normalise, world_size
from makemore.training.cuda_graph import GraphedStep, make_capturable, plain_optimizer_state
from makemore.training.optim import SGD


class OptimizerStep:
    """``step(x, y, positions) -> loss``: one optimizer step on one batch, its mean loss.

    Args:
        module: the ``CharLM`` (its optimizer, weight average and ``clip_gradients``).
        loss: the net's loss, compiled or not: ``loss(x, y, reduction, positions)``.
        scaler: 16-mixed's loss scaler (the precision plugin's), or None.
        accumulate: batches per step (``--trainer.accumulate_grad_batches``).
        clip: ``(value, algorithm)`` of ``--trainer.gradient_clip_val``/``_algorithm``; value None: none.
        graphed: capture the step as a CUDA graph.
    """

    def __init__(self, module: L.LightningModule, loss: Callable, scaler, accumulate: int, clip, graphed):
        self.module, self.loss, self.scaler, self.accumulate = module, loss, scaler, accumulate
        self.clip_value, self.clip_algorithm = clip
        self.optimizer = module.optimizers()
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        inner = self.optimizer.optimizer
        # torch's own step: Lightning's per-step hooks cost more than a step. Ours skips torch's
        # wrapper too, after the first step: through it, a schedule sees that the optimizer
        # stepped first (torch would warn that it did not).
        self.update = inner.step
        self.later_update = inner.update if isinstance(inner, SGD) else inner.step
        self.ema_net = module.ema_net
        self.averaged = list(module.net.parameters()) if self.ema_net is not None else None  # its order
        self.sums_gradients = accumulate > 1 or world_size() > 1
        self.sums = None  # the last step's (loss sum, target count) when sums_gradients
        self.graph = self.ema_weight = self.capturable_before = None
        if graphed:
            self.capturable_before = make_capturable(inner, module.device)
            if self.ema_net is not None:
                self.ema_weight = torch.zeros((), device=module.device)
            self.graph = GraphedStep(lambda x, y: self.eager(x, y, None))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        if self.ema_weight is not None:
            self.ema_weight.fill_(self.ema_net.next_weight())
        return self.graph(x, y) if self.graph is not None else self.eager(x, y, positions)

    def eager(self, x: torch.Tensor, y: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """The step itself, which a graph captures."""
        for p in self.params:  # what zero_grad(set_to_none=True) does, without its profiler scope
            p.grad = None
        if self.sums_gradients:  # accumulating or distributed: the mean over the global batch
            loss_sum, count = self._summed_backward(x, y, positions)
            sum_gradients_and_normalise(self.params, count)
            self.sums = (loss_sum, count)
            loss = loss_sum / count
        else:
            loss = self.loss(x, y, "mean", positions)
            self._backward(loss)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer.optimizer)  # true gradients for clipping and the step
        if self.clip_value:
            self.module.clip_gradients(self.optimizer, self.clip_value, self.clip_algorithm)
        if self.scaler is not None:  # skips a step whose gradients overflowed; adapts the scale
            self.scaler.step(self.optimizer.optimizer)
            self.scaler.update()
        else:
            self.update()
            self.update = self.later_update
        if self.ema_weight is not None:
            self.ema_net.update_by(self.averaged, self.ema_weight)
        elif self.ema_net is not None:
            self.ema_net.update(self.averaged)
        return loss.detach()

    def _backward(self, loss: torch.Tensor) -> None:
        # Not manual_backward: its hooks cost more than this backward pass. The loss scaling it
        # would apply under 16-mixed is the precision plugin's public GradScaler, used here.
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _summed_backward(self, x, y, positions) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward of the summed loss, in ``accumulate`` parts of the step's batch (rows of a
        packed one) one after another, so only a part's activations are held at a time; the
        summed loss and the number of targets."""
        parts = zip(x.chunk(self.accumulate), y.chunk(self.accumulate), chunks(positions, self.accumulate))
        loss_sum = count = 0
        for x_part, y_part, positions_part in parts:
            part = self.loss(x_part, y_part, "sum", positions_part)
            self._backward(part)
            loss_sum, count = loss_sum + part.detach(), count + (y_part != -1).sum()
        return loss_sum, count

    def plain_checkpoint(self, checkpoint: dict) -> None:
        """A captured run's checkpoint holds the optimizer state an eager run writes: any run resumes it."""
        if self.capturable_before is not None:
            plain_optimizer_state(checkpoint["optimizer_states"][0], self.capturable_before)
