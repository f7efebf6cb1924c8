"""``--model.cuda_graph``: each optimizer step replayed as one CUDA graph.

On a GPU these nets are bound by kernel launches: a step is hundreds of small kernels, each
launched from Python. Captured once as a CUDA graph (forward, backward, clipping, the optimizer's
update and the weight average), a step is one launch. A graph replays what was captured: the
same tensors (each batch is copied into the graph's own inputs), the same kernels, the same
Python numbers. So whatever changes from step to step lives in tensors the graph reads: the
learning rate (``param_group["lr"]`` becomes a device tensor, which torch's schedulers and ours
fill in place), the weight average's weight (filled before each replay) and Adam's step count
(on the device with ``capturable``). Dropout draws new masks at every replay (torch registers
its generator with the graph). The first few steps of the run are eager, on a side stream, as
torch asks before a capture (lazy optimizer state, library workspaces, compilation): they are
steps of the run, nothing is added or repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from makemore.errors import MakemoreError
from makemore.training.optim import SGD

WARMUP_STEPS = 3


def obstacles(optimizer: torch.optim.Optimizer, world_size: int, scaled: bool) -> list[str]:
    """What in this run a captured step cannot replay; empty if nothing."""
    found = []
    if not isinstance(optimizer, SGD | torch.optim.Adam | torch.optim.AdamW):
        found.append(f"the optimizer {type(optimizer).__name__} (makemore's SGD, Adam and AdamW can be captured)")
    if world_size > 1:
        found.append("several processes")
    if scaled:
        found.append("16-mixed (its loss scaler checks for overflow on the host; use bf16-mixed)")
    return found


def captures_on(device: torch.device) -> bool:
    """Whether steps on ``device`` can be captured (the tests also capture on a CPU, with a stand-in)."""
    return device.type == "cuda"


def decide(setting: bool | None, device: torch.device, compiled: bool, compile_mode: str | None, found: list[str]):
    """Whether to capture the steps: as asked, or (``setting`` None) when compiled on a GPU and
    nothing stands in the way. Asked for and impossible: one line."""
    on_cuda = captures_on(device)
    if setting and not on_cuda:
        raise MakemoreError("--model.cuda_graph true needs a CUDA GPU (--trainer.accelerator gpu)")
    if setting and found:
        raise MakemoreError(f"--model.cuda_graph true cannot capture a step with {found[0]}; set it false")
    graphed = setting if setting is not None else on_cuda and compiled and not found
    if graphed and compiled and compile_mode == "reduce-overhead":
        raise MakemoreError(
            "--model.compile_mode reduce-overhead captures graphs of its own, inside the step's: "
            "drop it, or set --model.cuda_graph false"
        )
    return graphed


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> list:
    """The optimizer reads its learning rates from device tensors, and Adam keeps its step count
    there; the groups' settings before, for ``plain_optimizer_state``."""
    before = []
    for group in optimizer.param_groups:
        before.append(group.get("capturable"))
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        if "capturable" in group:
            group["capturable"] = True
    for param, state in optimizer.state.items():  # Adam's count, resumed from an eager run's checkpoint
        if isinstance(state.get("step"), torch.Tensor) and state["step"].device != param.device:
            state["step"] = state["step"].to(param.device, torch.float32)
    return before


def plain_optimizer_state(state: dict, before: list) -> None:
    """A checkpoint's optimizer state as an eager run writes it: float rates and the groups'
    own ``capturable``, so any run can resume it."""
    for group, capturable in zip(state["param_groups"], before):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"] = group["lr"].item()
        if capturable is not None:
            group["capturable"] = capturable


class CudaGraphs:
    """How ``GraphedStep`` warms up and captures on a GPU (the tests put a CPU stand-in here).
    Warm-up and capture share one side stream: libraries set up per stream (cuBLAS) are then
    set up before the capture, not inside it."""

    def __init__(self):
        self.stream = torch.cuda.Stream()

    @contextmanager
    def warming(self) -> Iterator[None]:
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            yield
        torch.cuda.current_stream().wait_stream(self.stream)

    def capture(self, record: Callable[[], None]) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            record()
        return graph.replay


class GraphedStep:
    """``step(*inputs) -> loss`` run eagerly for the first ``warmup_steps`` calls, then captured
    once and replayed. Each call copies its inputs into the graph's own and returns a copy of
    the loss (the graph rewrites its output at every replay)."""

    def __init__(self, step: Callable[..., torch.Tensor], warmup_steps: int = WARMUP_STEPS):
        self.step = step
        self.warmup_steps = warmup_steps
        self.graphs = CudaGraphs()
        self.inputs: list[torch.Tensor] | None = None
        self.output: torch.Tensor | None = None
        self.replay: Callable[[], None] | None = None
        self.calls = 0

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.inputs is None:
            self.inputs = [t.clone() for t in inputs]
        for static, given in zip(self.inputs, inputs):
            if static.shape != given.shape:
                raise MakemoreError(f"a CUDA graph replays one shape: {tuple(static.shape)}, got {tuple(given.shape)}")
            static.copy_(given)
        if self.replay is None and self.calls < self.warmup_steps:
            self.calls += 1
            with self.graphs.warming():
                return self.step(*self.inputs).clone()
        if self.replay is None:
            try:
                self.replay = self.graphs.capture(self._record)
            except RuntimeError as err:  # e.g. an operation that waits for the host
                reason = str(err).strip().splitlines()[0]
                raise MakemoreError(
                    f"the training step cannot be captured ({reason}); train with --model.cuda_graph false"
                ) from None
        self.replay()
        return self.output.clone()

    def _record(self) -> None:
        self.output = self.step(*self.inputs)
