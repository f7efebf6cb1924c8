"""Every config in configs/ fits a few steps in-process and tests from its checkpoint; a model
given the wrong kind of data, or a checkpoint a longer context than it was built for, fails at
start-up with one line."""

import math

import pytest
import torch

from makemore.cli import run

from .conftest import CONFIGS, ROOT, fails, tiny_fit_args


def _eval(subcommand, config, data, ckpt, *extra):
    args = [subcommand, "--config", str(config), "--data.path", str(data), "--data.eval_tokens", "64"]
    args += ["--trainer.accelerator", "cpu", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    return run([*args, "--ckpt_path", str(ckpt), *extra])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_fits_and_tests_from_its_checkpoint(config, words_file, tmp_path):
    cli = run(tiny_fit_args(words_file, tmp_path / "ck", config=str(config), steps=20))
    assert cli.trainer.global_step == 20
    ckpt = tmp_path / "ck" / f"{config.stem}-1" / "last.ckpt"
    tested = _eval("test", config, words_file, ckpt)
    loss = tested.trainer.callback_metrics["test_loss"].item()
    assert 0 < loss < math.log(8) + 0.3  # 7 characters + the boundary token: near uniform or better


def test_bigram_fit_counts_the_whole_training_split(words_file, tmp_path):
    cli = run(tiny_fit_args(words_file, tmp_path / "ck", config="configs/bigram.yaml", steps=20))
    x, y = cli.datamodule.tensors("train")
    assert cli.model.net.counts.sum().item() == len(y)
    expected = torch.zeros_like(cli.model.net.counts)
    expected.index_put_((x[:, -1], y), torch.ones(len(y)), accumulate=True)
    assert torch.equal(cli.model.net.counts, expected)


@pytest.mark.parametrize(
    "config, examples", [("transformer", "windows"), ("v4", "sequences"), ("lstm", "windows"), ("best", "windows")]
)
def test_model_given_the_other_kind_of_data(config, examples, words_file, tmp_path, capsys):
    args = [*tiny_fit_args(words_file, tmp_path / "ck", config=f"configs/{config}.yaml"), "--data.examples", examples]
    line = fails(args, capsys)
    assert line.startswith("error: ") and f"but data.examples is {examples}" in line
    assert not (tmp_path / "ck").exists()  # refused before any run directory


def test_checkpoint_built_for_a_shorter_context(words_file, tmp_path, capsys):
    run(tiny_fit_args(words_file, tmp_path / "ck", config="configs/transformer.yaml", steps=10))
    longer = tmp_path / "longer.txt"
    longer.write_text(words_file.read_text() + "abcdefabcdefabcdef\n")
    ckpt = tmp_path / "ck" / "transformer-1" / "last.ckpt"
    config = str(ROOT / "configs/transformer.yaml")
    args = ["validate", "--config", config, "--data.path", str(longer), "--trainer.logger", "false"]
    line = fails([*args, "--ckpt_path", str(ckpt)], capsys)
    assert "longer.txt is not the data file" in line
    # A checkpoint from before data files were fingerprinted: the block size still tells.
    older = torch.load(ckpt, weights_only=True)
    del older["datamodule_hyper_parameters"]["data_file"]
    torch.save(older, tmp_path / "older.ckpt")
    line = fails([*args, "--ckpt_path", str(tmp_path / "older.ckpt")], capsys)
    assert line.startswith("error: the checkpoint was built for block_size=10 but the data gives 19")


def test_foreach_adamw_trains_the_weights_of_the_default_to_float_tolerance(words_file, tmp_path):
    # The AdamW configs ask for foreach: true for speed; torch's default loop must land on the
    # same weights but for rounding.
    weights = []
    for foreach in ("true", "false"):
        args = tiny_fit_args(words_file, tmp_path / foreach, config="configs/transformer.yaml", steps=15)
        cli = run([*args, "--model.optimizer.init_args.foreach", foreach])
        assert cli.trainer.optimizers[0].param_groups[0]["foreach"] is (foreach == "true")
        weights.append(torch.cat([p.detach().flatten() for p in cli.model.net.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-4, atol=1e-5)


def test_decay_vectors_false_decays_only_matrices(words_file, tmp_path):
    config = str(ROOT / "configs/transformer.yaml")
    cli = run(["--config", config, "--data.path", str(words_file), "--model.decay_vectors", "false"], subcommand=False)
    optimizer = cli.model.configure_optimizers()["optimizer"]
    params = list(cli.model.net.parameters())
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)  # Adam's update is then 0: only the decay moves a weight
    lr, decay = 0.1, optimizer.param_groups[0]["weight_decay"]
    for group in optimizer.param_groups:
        group["lr"] = lr  # well above warm-up's, so the decay is far outside rounding
    optimizer.step()
    assert decay > 0 and {p.ndim for p in params} >= {1, 2}
    for p, old in zip(params, before):
        expected = old * (1 - lr * decay) if p.ndim >= 2 else old
        torch.testing.assert_close(p.detach(), expected)


def _flat(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        flat |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
    return flat


def test_a_config_holds_what_differs_from_its_base():
    base = _flat(run(["--config", str(ROOT / "configs/base/lecture.yaml")], subcommand=False).config.as_dict())
    v5 = _flat(run(["--config", str(ROOT / "configs/v5.yaml")], subcommand=False).config.as_dict())
    differ = {key for key in base.keys() | v5.keys() if base.get(key) != v5.get(key)}
    assert differ == {"config", "model.net.init_args.n_embd", "model.net.init_args.n_hidden"}
    assert (v5["model.net.init_args.n_embd"], v5["model.net.init_args.n_hidden"]) == (24, 128)


def test_a_runs_saved_config_stands_alone(words_file, tmp_path, capsys):
    run(tiny_fit_args(words_file, tmp_path, config="configs/lstm.yaml", steps=5))
    saved = tmp_path / "lstm-1" / "config.yaml"
    assert "\nbase:" not in saved.read_text()  # applied already: the file is whole, with no base key
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run(["fit", "--config", str(saved), "--print_config"])
    assert exit_info.value.code == 0 and "cell: lstm" in capsys.readouterr().out


def test_bases_that_name_each_other_are_one_line(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    assert "break the loop of base: keys" in fails(["fit", "--config", str(tmp_path / "a.yaml")], capsys)
