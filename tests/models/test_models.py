"""The V1-V5 line built from the config files: parameter counts, init loss, training signal."""

import math

import pytest
import torch

from makemore.cli import run
from makemore.errors import MakemoreError
from makemore.models import WaveNet

from ..conftest import CONFIGS, ROOT

PUBLISHED = {"v1": 12_097, "v2": 22_097, "v3": 22_397, "v4": 22_397, "v5": 76_579}


def build(config: str):
    return run(["--config", str(ROOT / "configs" / f"{config}.yaml")], subcommand=False).model


@pytest.mark.parametrize("config, params", PUBLISHED.items())
def test_parameter_counts_from_config_files(config, params):
    assert sum(p.numel() for p in build(config).parameters()) == params


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds(path):
    model = run(["--config", str(path)], subcommand=False).model
    assert model.vocab.size == 27


def test_v3_has_the_batchnorm_bug_and_v4_not():
    bug = [m.batch_dim_only for m in build("v3").modules() if hasattr(m, "batch_dim_only")]
    fixed = [m.batch_dim_only for m in build("v4").modules() if hasattr(m, "batch_dim_only")]
    assert bug == [True] * 3 and fixed == [False] * 3


def test_wavenet_loss_at_init_is_near_uniform_and_every_parameter_learns():
    net = WaveNet(27, 8)
    x = torch.randint(0, 27, (64, 8))
    y = torch.randint(0, 27, (64,))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    assert abs(loss.item() - math.log(27)) < 0.3
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_wavenet_is_causal_over_its_window_only():
    """The next-token logits depend on every context position, and only on the context."""
    net = WaveNet(27, 8).eval()
    x = torch.randint(1, 27, (1, 8))
    base = net(x)
    for t in range(8):
        changed = x.clone()
        changed[0, t] = (changed[0, t] % 26) + 1
        assert not torch.allclose(net(changed), base)


def test_merge_must_cover_block_size():
    with pytest.raises(MakemoreError, match="product of merge"):
        WaveNet(27, 8, merge=[2, 2])


def test_mismatched_merge_is_a_clean_cli_error(capsys, tmp_path):
    from makemore.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "fit",
                "--config",
                str(ROOT / "configs/v5.yaml"),
                "--data.block_size",
                "3",
                "--checkpoint_root",
                str(tmp_path / "ck"),
            ]
        )
    assert exit_info.value.code != 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: WaveNet merge=[2, 2, 2]")
    assert not (tmp_path / "ck").exists()  # a run that never started leaves no directory
