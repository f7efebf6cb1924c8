"""The weight average (``--model.ema_decay``): its formula, that evaluation, checkpoints and
predict use it, and that a resumed run continues the same average."""

from __future__ import annotations

import pytest
import torch

from makemore.cli import main, run
from makemore.inference.loading import load
from makemore.models import nll
from makemore.nn.layers import BatchNorm1d, Linear
from makemore.training.averaging import AveragedNet

from ..conftest import tiny_fit_args

EMA = ["--model.ema_decay", "0.9"]


def test_update_follows_the_formula_with_its_warm_up():
    net = torch.nn.Sequential(Linear(3, 2), BatchNorm1d(2))
    averaged = AveragedNet(net, decay=0.9)
    expected = [p.detach().clone() for p in net.parameters()]
    for n in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        averaged.update(list(net.parameters()))
        d = min(0.9, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, net.parameters())]
    for got, want in zip(averaged.net.parameters(), expected):
        torch.testing.assert_close(got, want)
    assert averaged.updates == 30 and not any(p.requires_grad for p in averaged.net.parameters())

    net[1].running_mean.fill_(3.0)
    averaged.copy_buffers(net)  # running statistics are taken as they are, not averaged
    assert torch.equal(averaged.net[1].running_mean, net[1].running_mean)


@pytest.mark.parametrize("config", ["configs/v4.yaml", "configs/lstm.yaml"])
def test_validation_checkpoints_and_predict_use_the_average(words_file, tmp_path, config):
    cli = run([*tiny_fit_args(words_file, tmp_path / "ck", config=config, steps=40), *EMA])
    model, dm = cli.model.eval(), cli.datamodule
    x, y = dm.tensors("val")
    with torch.no_grad():
        averaged, trained = nll(model.ema_net.net(x), y).item(), nll(model.net(x), y).item()
    assert averaged != pytest.approx(trained, abs=1e-4)  # the two really differ
    got = cli.trainer.validate(model, dataloaders=dm.eval_dataloader("val"), verbose=False)[0]["val_loss"]
    assert got == pytest.approx(averaged, abs=1e-5)

    last = next((tmp_path / "ck").glob("*/last.ckpt"))
    loaded = load(last).net.state_dict()
    for name, value in model.ema_net.net.state_dict().items():
        assert torch.equal(loaded[name], value), name


def test_resume_continues_the_same_average(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path / "a", steps=40), *EMA])
    run([*tiny_fit_args(words_file, tmp_path / "b", steps=20), *EMA])
    resumed = run([*tiny_fit_args(words_file, tmp_path / "b", steps=40), *EMA, "--ckpt_path", "last"])
    assert resumed.model.ema_net.updates == 40
    a = torch.load(tmp_path / "a" / "v4-1" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "v4-1" / "last.ckpt", weights_only=True)["state_dict"]
    for name in a:
        if name.startswith("ema_net.net."):
            assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize(
    "config, decay, problem",
    [("configs/v4.yaml", "1.5", "strictly between 0 and 1"), ("configs/bigram.yaml", "0.9", "fitted by counting")],
)
def test_bad_decay_is_one_clear_line(words_file, tmp_path, capsys, config, decay, problem):
    with pytest.raises(SystemExit) as exit_info:
        main([*tiny_fit_args(words_file, tmp_path, config=config, steps=5), "--model.ema_decay", decay])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and problem in err[-1] and err[-1].startswith("error:")
