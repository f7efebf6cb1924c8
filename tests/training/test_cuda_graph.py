"""``--model.cuda_graph``: a captured step trains as the eager one does.

A CUDA graph needs a GPU; here a CPU stand-in records and replays the step as a graph would
(``graph_stand_in.py``): a number baked in at capture or a host sync inside the step fails here
as it would on a GPU.
"""

import pytest
import torch

from makemore.cli import run
from makemore.errors import MakemoreError
from makemore.training import cuda_graph
from makemore.training.cuda_graph import GraphedStep
from makemore.training.optim import SGD, MilestoneDecay

from ..conftest import fails, tiny_fit_args
from .graph_stand_in import GraphStandIn

SMALL_TRANSFORMER = ["--model.net.init_args.n_layer", "1", "--model.net.init_args.n_embd", "16"]
NO_DROPOUT = ["--model.net.init_args.dropout", "0"]  # the same masks in both runs: none


@pytest.fixture
def stand_in(monkeypatch):
    """Steps on a CPU are captured, by stand-ins; the list holds those made."""
    made = []

    class Recorded(GraphStandIn):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(cuda_graph, "CudaGraphs", Recorded)
    monkeypatch.setattr(cuda_graph, "captures_on", lambda device: True)
    return made


def weights(cli) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in cli.model.state_dict().items()
        if isinstance(v, torch.Tensor) and v.is_floating_point()
    }


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "config, extra",
    [
        # SGD whose rate drops mid-run; BatchNorm's running statistics
        ("configs/v5.yaml", ["--model.lr_scheduler.init_args.milestones", "[7]"]),
        # under autocast: the casts of each step's own weights are captured, not a cache's
        ("configs/v5.yaml", ["--trainer.precision", "bf16-mixed"]),
        # fused AdamW, warm-up + cosine (a new rate every step), the weight average, clipping
        ("configs/transformer.yaml", [*SMALL_TRANSFORMER, *NO_DROPOUT, "--trainer.gradient_clip_val", "0.05"]),
        # the other families' steps hold no host sync either, and replay as they ran
        ("configs/mlp.yaml", []),
        ("configs/v3.yaml", []),  # its BatchNorm's buffers grow at the first step, before the capture
        ("configs/bow.yaml", []),
        *[(f"configs/{cell}.yaml", NO_DROPOUT) for cell in ("rnn", "lstm", "gru")],
    ],
)
def test_a_captured_step_trains_as_the_eager_step(words_file, tmp_path, stand_in, config, extra):
    args = [*tiny_fit_args(words_file, tmp_path, config=config, steps=20), *extra]
    captured = run([*args, "--model.cuda_graph", "true"])
    assert len(stand_in) == 1 and stand_in[0].captures == 1
    assert stand_in[0].replays == 20 - cuda_graph.WARMUP_STEPS  # the first steps run eagerly
    eager = run([*args, "--model.cuda_graph", "false"])
    assert len(stand_in) == 1
    assert_same_weights(weights(captured), weights(eager))


def test_a_captured_run_writes_an_eager_checkpoint_that_resumes(words_file, tmp_path, stand_in):
    args = [*tiny_fit_args(words_file, tmp_path, config="configs/transformer.yaml", steps=20), *SMALL_TRANSFORMER]
    args = [*args, *NO_DROPOUT]
    run([*args, "--trainer.max_steps", "10", "--model.cuda_graph", "true"])
    last = tmp_path / "transformer-1" / "last.ckpt"
    for group in torch.load(last, weights_only=True)["optimizer_states"][0]["param_groups"]:
        assert type(group["lr"]) is float and group["capturable"] is False
    resumed = run([*args, "--model.cuda_graph", "false", "--ckpt_path", str(last)])
    unbroken = run([*args, "--model.cuda_graph", "false"])
    assert resumed.trainer.global_step == 20
    assert_same_weights(weights(resumed), weights(unbroken))


def test_asking_for_a_graph_without_a_gpu_is_one_line(words_file, tmp_path, capsys):
    assert "needs a CUDA GPU" in fails(
        [*tiny_fit_args(words_file, tmp_path / "ck"), "--model.cuda_graph", "true"], capsys
    )
    assert not (tmp_path / "ck").exists()


def test_accumulated_batches_are_captured_in_one_step(words_file, tmp_path, stand_in):
    args = [*tiny_fit_args(words_file, tmp_path, config="configs/mlp.yaml", steps=10), "--data.batch_size", "8"]
    args += ["--trainer.accumulate_grad_batches", "2"]
    captured = run([*args, "--model.cuda_graph", "true"])
    assert stand_in[0].replays == 10 - cuda_graph.WARMUP_STEPS
    assert_same_weights(weights(captured), weights(run([*args, "--model.cuda_graph", "false"])))


def test_what_a_graph_cannot_replay_is_one_line(words_file, tmp_path, capsys, stand_in):
    args = [*tiny_fit_args(words_file, tmp_path / "ck"), "--model.cuda_graph", "true"]
    assert "SGD, Adam and AdamW" in fails([*args, "--model.optimizer", "torch.optim.RMSprop"], capsys)
    compiled = ["--model.compile", "true", "--model.compile_mode", "reduce-overhead"]
    assert "graphs of its own" in fails([*args, *compiled], capsys)
    assert not (tmp_path / "ck").exists()


def sgd_step(rate: float | torch.Tensor):
    """A tiny step of the lecture's SGD on a fixed quadratic, its schedule halving the rate at step 2."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = SGD([weight], lr=rate)
    schedule = MilestoneDecay(optimizer, milestones=[2], gamma=0.5)

    def step(x: torch.Tensor) -> torch.Tensor:
        weight.grad = None
        loss = ((weight * x) ** 2).sum()
        loss.backward()
        optimizer.update()
        return loss.detach()

    return weight, step, schedule


def test_the_stand_in_replays_numbers_as_captured_and_a_tensor_rate_as_filled(monkeypatch):
    monkeypatch.setattr(cuda_graph, "CudaGraphs", GraphStandIn)
    x = torch.tensor([1.0, 2.0, 3.0])
    results = {}
    for kind, rate in [("eager", None), ("float", 0.1), ("tensor", torch.tensor(0.1))]:
        weight, step, schedule = sgd_step(rate if rate is not None else 0.1)
        graphed = GraphedStep(step, warmup_steps=1) if rate is not None else step
        for _ in range(4):
            graphed(x)
            schedule.step()
        results[kind] = weight.detach()
    torch.testing.assert_close(results["tensor"], results["eager"])  # the schedule's rate reaches the graph
    assert not torch.allclose(results["float"], results["eager"])  # a float rate is baked in: caught


def test_a_step_that_waits_for_the_host_cannot_be_captured(monkeypatch):
    monkeypatch.setattr(cuda_graph, "CudaGraphs", GraphStandIn)
    graphed = GraphedStep(lambda x: x * float(x.sum()), warmup_steps=1)
    graphed(torch.ones(2))
    with pytest.raises(MakemoreError, match="cannot be captured"):
        graphed(torch.ones(2))


def test_a_graph_refuses_a_batch_of_another_shape(monkeypatch):
    monkeypatch.setattr(cuda_graph, "CudaGraphs", GraphStandIn)
    graphed = GraphedStep(lambda x: x * 2, warmup_steps=0)
    assert torch.equal(graphed(torch.ones(2)), torch.full((2,), 2.0))
    assert torch.equal(graphed(torch.full((2,), 3.0)), torch.full((2,), 6.0))  # replayed on the new input
    with pytest.raises(MakemoreError, match="one shape"):
        graphed(torch.ones(3))
