"""Several processes, one model: the synchronised BatchNorm against the statistics
``torch.nn.SyncBatchNorm`` computes, and 2-process DDP runs of the CLI against 1 process with
the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from makemore.cli import run
from makemore.nn.layers import BatchNorm1d

from ..conftest import ROOT, curve, tiny_fit_args
from .test_reliability import assert_same_weights

WORLD = 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = {"2d": ((8, 5), False), "3d": ((6, 4, 3), False), "v3-bug": ((6, 4, 3), True)}


def _batchnorm_on_rank(rank: int, port: int, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        for case, (shape, batch_dim_only) in CASES.items():
            torch.manual_seed(0)  # the same global batch and weights on every rank
            x = torch.randn(shape) * 3 + 1
            upstream = torch.randn(shape)  # the gradient arriving from the layers above
            bn = BatchNorm1d(shape[-1], batch_dim_only=batch_dim_only)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)
            mine = x.chunk(WORLD)[rank].clone().requires_grad_()
            out = bn(mine)
            (out * upstream.chunk(WORLD)[rank]).sum().backward()
            for p in bn.parameters():  # the gradient all-reduce DDP does
                dist.all_reduce(p.grad)
            results[case, rank] = {
                "out": out.detach(),
                "x_grad": mine.grad,
                "w_grad": bn.weight.grad,
                "b_grad": bn.bias.grad,
                "running_mean": bn.running_mean,
                "running_var": bn.running_var,
            }
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def synchronised():
    """Every case on two ranks, in one spawn (a spawn costs seconds of imports)."""
    results = mp.Manager().dict()
    mp.start_processes(_batchnorm_on_rank, args=(_free_port(), results), nprocs=WORLD, start_method="spawn")
    return dict(results)


@pytest.mark.parametrize("case", list(CASES))
def test_synchronised_batchnorm_computes_what_syncbatchnorm_does(synchronised, case):
    shape, batch_dim_only = CASES[case]
    results = {rank: synchronised[case, rank] for rank in range(WORLD)}
    # torch.nn.SyncBatchNorm refuses CPU tensors; its defined result is BatchNorm over the
    # global batch (every rank's rows together), which torch's own BatchNorm gives here.
    torch.manual_seed(0)
    x = (torch.randn(shape) * 3 + 1).requires_grad_()
    upstream = torch.randn(shape)
    bn = BatchNorm1d(shape[-1], batch_dim_only=batch_dim_only)  # only to draw the same weights
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    reference = torch.nn.BatchNorm1d(shape[-1] if not batch_dim_only else shape[1] * shape[2], momentum=0.1)
    flat = x if len(shape) == 2 else (x.reshape(-1, shape[-1]) if not batch_dim_only else x.reshape(shape[0], -1))
    with torch.no_grad():
        reference.weight.copy_(bn.weight.repeat(flat.shape[1] // shape[-1]))
        reference.bias.copy_(bn.bias.repeat(flat.shape[1] // shape[-1]))
    out = reference(flat).reshape(shape)
    (out * upstream).sum().backward()
    torch.testing.assert_close(torch.cat([results[r]["out"] for r in range(WORLD)]), out.detach())
    torch.testing.assert_close(torch.cat([results[r]["x_grad"] for r in range(WORLD)]), x.grad)
    weight_grad = reference.weight.grad.reshape(-1, shape[-1]).sum(0)
    bias_grad = reference.bias.grad.reshape(-1, shape[-1]).sum(0)
    for r in range(WORLD):
        torch.testing.assert_close(results[r]["w_grad"], weight_grad)
        torch.testing.assert_close(results[r]["b_grad"], bias_grad)
        view = results[r]["running_mean"].shape
        torch.testing.assert_close(results[r]["running_mean"], reference.running_mean.reshape(view))
        torch.testing.assert_close(results[r]["running_var"], reference.running_var.reshape(view))


def _fit(words_file: Path, root: Path, config: str, batch: int, devices: int, extra: list[str], steps=60) -> Path:
    args = tiny_fit_args(words_file, root, config=config, steps=steps)
    args += ["--data.batch_size", str(batch), "--data.batches_per_epoch", "30", *extra]
    if devices > 1:  # in child processes, as a user launches them
        args += ["--trainer.strategy", "ddp", "--trainer.devices", str(devices)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "makemore", *args]
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
    else:  # one process: this one, one thread (conftest), which saves a start-up
        run(args)
    runs = sorted(root.iterdir())
    assert len(runs) == 1, runs  # one run directory, whatever the number of processes
    return runs[0] / "last.ckpt"


@pytest.mark.parametrize(
    "config, extra",
    [
        ("configs/v5.yaml", []),
        ("configs/transformer.yaml", ["--model.net.init_args.dropout", "0", "--model.net.init_args.n_embd", "32"]),
    ],
    ids=["v5-batchnorm", "transformer"],
)
def test_two_processes_with_batch_16_match_one_with_batch_32(words_file, tmp_path, config, extra):
    extra = [*extra, "--trainer.log_every_n_steps", "10"]
    one = _fit(words_file, tmp_path / "one", config, 32, 1, extra)
    two = _fit(words_file, tmp_path / "two", config, 16, 2, extra)
    a, b = (torch.load(p, weights_only=True) for p in (one, two))
    assert a["global_step"] == b["global_step"] == 60
    for name in a["state_dict"]:
        torch.testing.assert_close(b["state_dict"][name], a["state_dict"][name], rtol=1e-4, atol=1e-5, msg=name)
    for tag in ("train_loss", "val_loss"):  # the loss curves: global batch, whole split
        first, second = ([value for _, value in curve(p.parent, tag)] for p in (one, two))
        assert len(first) == len(second) >= 2
        torch.testing.assert_close(torch.tensor(second), torch.tensor(first), rtol=1e-5, atol=1e-5)


def test_two_process_run_resumes_bit_for_bit_with_every_ranks_dropout_state(words_file, tmp_path):
    extra = ["--model.net.init_args.n_embd", "16", "--model.net.init_args.n_layer", "1"]  # dropout on
    unbroken = _fit(words_file, tmp_path / "a", "configs/transformer.yaml", 16, 2, extra, steps=60)
    _fit(words_file, tmp_path / "b", "configs/transformer.yaml", 16, 2, extra, steps=45)  # stops mid-epoch
    resumed = _fit(words_file, tmp_path / "b", "configs/transformer.yaml", 16, 2, [*extra, "--ckpt_path", "last"])
    a, b = (torch.load(p, weights_only=True) for p in (unbroken, resumed))
    assert b["global_step"] == 60 and b["rng_states"].shape[0] == 2
    assert_same_weights(a["state_dict"], b["state_dict"])
