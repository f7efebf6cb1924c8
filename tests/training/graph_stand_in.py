"""A CPU stand-in for a CUDA graph, for ``GraphedStep`` (``graphs=GraphStandIn()``).

Like a CUDA graph it records the operations of one call and replays exactly those: the same
tensors (results are written back into the tensors the recording made, as a graph reuses its
memory), the same Python numbers, fresh random draws. Like a capture it leaves no effect (the
tensors that existed before it are put back) and refuses operations that wait for the host
(``.item()``, ``bool(tensor)``, ``nonzero``). So a step that would bake a changing number into
a CUDA graph, or sync inside one, fails here too. Only operations that reach torch's dispatcher
are seen: an eager step, not one compiled by inductor.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from makemore.training.private import TorchDispatchMode, host_sync_operators

HOST_SYNCS = host_sync_operators()


def tensors_in(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in tensors_in(item)]
    if isinstance(value, dict):
        return tensors_in(list(value.values()))
    return []


class Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []
        self.created: set[int] = set()  # storages made during the recording
        self.saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # older tensors it reads or writes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HOST_SYNCS:
            raise RuntimeError(f"{func} waits for the host: not allowed while capturing")
        for t in tensors_in((args, kwargs)):  # as it was before the capture, should the op write it
            if storage(t) not in self.created and id(t) not in self.saved and writable(t):
                self.saved[id(t)] = (t, t.detach().clone())
        out = func(*args, **kwargs)
        for t in tensors_in(out):
            if storage(t) not in {storage(a) for a in tensors_in((args, kwargs))}:
                self.created.add(storage(t))
        self.ops.append((func, args, kwargs, out))
        return out


def storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def writable(t: torch.Tensor) -> bool:
    """False for a broadcast view (several elements on one memory location): nothing writes it."""
    return all(stride or size == 1 for stride, size in zip(t.stride(), t.shape))


class GraphStandIn:
    """``warming()`` and ``capture(record) -> replay`` as ``makemore.training.cuda_graph.CudaGraphs``."""

    def __init__(self):
        self.captures = 0
        self.replays = 0

    def warming(self):
        return nullcontext()

    def capture(self, record):
        recorder = Recorder()
        with recorder:
            record()
        with torch.no_grad():  # a capture computes nothing: what it changed is put back
            for t, before in recorder.saved.values():
                t.copy_(before)
        self.captures += 1
        return lambda: self._replay(recorder.ops)

    @torch.no_grad()
    def _replay(self, ops) -> None:
        self.replays += 1
        for func, args, kwargs, out in ops:
            result = func(*args, **kwargs)
            inputs = {storage(t) for t in tensors_in((args, kwargs))}
            for recorded, fresh in zip(tensors_in(out), tensors_in(result)):
                if recorded is not fresh and storage(recorded) not in inputs:  # not a view or in-place
                    recorded.copy_(fresh)
