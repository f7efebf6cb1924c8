"""The hand-written SGD against torch.optim.SGD, and the step-based decay."""

import pytest
import torch
from torch.testing import assert_close

from makemore.errors import MakemoreError
from makemore.training.optim import SGD, MilestoneDecay, WarmupCosine


def _train(optimizer_cls, steps=6, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = optimizer_cls(model.parameters(), **kwargs)
    data = torch.randn(steps, 16, 4)
    for x in data:

        def closure(x=x):
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            return loss

        opt.step(closure)
    return [p.detach() for p in model.parameters()]


SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01},
    {"lr": 0.1, "weight_decay": 0.1},
]


@pytest.mark.parametrize("kwargs", SETTINGS)
def test_sgd_matches_torch(kwargs):
    assert_close(_train(SGD, **kwargs), _train(torch.optim.SGD, **kwargs))


def test_step_calls_the_closure_and_returns_its_loss():
    p = torch.nn.Parameter(torch.ones(2))
    opt = SGD([p], lr=0.5)
    calls = []

    def closure():
        calls.append(1)
        p.grad = torch.ones(2)
        return torch.tensor(3.0)

    assert opt.step(closure).item() == 3.0 and calls == [1]
    assert_close(p.detach(), torch.full((2,), 0.5))


def test_sgd_rejects_negative_settings():
    with pytest.raises(ValueError, match="lr"):
        SGD([torch.nn.Parameter(torch.ones(1))], lr=-1)


@pytest.mark.parametrize("setting", [{"lr": float("nan")}, {"momentum": float("inf")}, {"weight_decay": float("nan")}])
def test_sgd_rejects_settings_that_are_not_finite(setting):
    with pytest.raises(ValueError, match=f"finite {next(iter(setting))}"):
        SGD([torch.nn.Parameter(torch.ones(1))], **setting)


@pytest.mark.parametrize(
    "schedule, kwargs, option",
    [
        (MilestoneDecay, {"milestones": [10], "gamma": -1.0}, "gamma must lie in [0, inf]"),  # the rate's sign flips
        (MilestoneDecay, {"milestones": [10], "gamma": float("nan")}, "gamma must be a finite number"),
        (MilestoneDecay, {"milestones": [-5]}, "milestones must be steps >= 0"),
        (WarmupCosine, {"total_steps": 10, "min_factor": -1.0}, "min_factor must lie in [0, 1]"),  # ends negative
        (WarmupCosine, {"total_steps": 10, "min_factor": float("nan")}, "min_factor must be a finite number"),
    ],
)
def test_a_schedule_that_would_make_the_rate_negative_or_nan_is_one_line(schedule, kwargs, option):
    optimizer = SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    with pytest.raises(MakemoreError) as caught:
        schedule(optimizer, **kwargs)
    assert f"--model.lr_scheduler.init_args.{option}" in str(caught.value)


def test_milestone_decay_at_and_around_each_milestone():
    opt = SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    sched = MilestoneDecay(opt, milestones=[5, 3], gamma=0.1)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert_close(torch.tensor(lrs), torch.tensor([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001]))


def test_milestone_decay_resumes_from_state():
    opt = SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    sched = MilestoneDecay(opt, milestones=[150_000])
    for _ in range(3):
        sched.step()
    opt2 = SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    sched2 = MilestoneDecay(opt2, milestones=[150_000])
    sched2.load_state_dict(sched.state_dict())
    sched2.last_epoch = 149_999
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)
