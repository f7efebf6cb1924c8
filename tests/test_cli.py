"""In-process runs of the CLI on a tiny config: fit, validate, test, resume, and bad input."""

import math

import pytest
import torch

from makemore.cli import main, run

from .conftest import ROOT, tiny_fit_args


def files(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_fit_writes_checkpoints_and_events_then_validate_and_test(words_file, tmp_path):
    cli = run(tiny_fit_args(words_file, tmp_path / "ck"))
    run_dir = tmp_path / "ck" / "v4-1"
    names = files(run_dir)
    assert "last.ckpt" in names and any(n.startswith("best-") for n in names)
    assert any(n.startswith("events.out.tfevents") for n in names) and "config.yaml" in names
    assert cli.trainer.global_step == 40
    fit_val = cli.trainer.callback_metrics["val_loss"].item()

    ckpt = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["chars"] == ".abcdef"  # the vocabulary travels with the model
    assert ckpt["global_step"] == 40

    common = [
        "--data.path",
        str(words_file),
        "--data.eval_batch_size",
        "64",
        "--trainer.accelerator",
        "cpu",
        "--trainer.logger",
        "false",
        "--ckpt_path",
        str(run_dir / "last.ckpt"),
    ]
    validated = run(["validate", "--config", str(ROOT / "configs/v4.yaml"), *common])
    assert validated.trainer.callback_metrics["val_loss"].item() == pytest.approx(fit_val, abs=1e-5)
    tested = run(["test", "--config", str(ROOT / "configs/v4.yaml"), *common])
    test_loss = tested.trainer.callback_metrics["test_loss"].item()
    assert 0 < test_loss < math.log(8)  # learnt something over 40 steps


def test_val_loss_is_the_exact_mean_nll_over_the_split(words_file, tmp_path):
    cli = run(tiny_fit_args(words_file, tmp_path / "ck", steps=20))
    model, dm = cli.model.eval(), cli.datamodule
    x, y = dm.tensors("val")
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    got = cli.trainer.validate(model, dataloaders=dm.eval_dataloader("val"), verbose=False)[0]["val_loss"]
    assert got == pytest.approx(expected, abs=1e-5)


def test_second_run_gets_its_own_directory_and_resume_continues_in_place(words_file, tmp_path):
    root = tmp_path / "ck"
    run(tiny_fit_args(words_file, root, steps=20))
    first = files(root / "v4-1")
    run(tiny_fit_args(words_file, root, steps=20))
    assert (root / "v4-2" / "last.ckpt").exists()
    assert files(root / "v4-1") == first  # the first run is untouched

    resumed = run([*tiny_fit_args(words_file, root, steps=40), "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 40
    assert torch.load(root / "v4-2" / "last.ckpt", weights_only=True)["global_step"] == 40
    assert not (root / "v4-3").exists() and files(root / "v4-1") == first


def _fails(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "does not exist"),
        ("dir", "is a directory"),
        (b"", "has no items"),
        (b"  \n \n", "has no items"),
        (b"ab\xffcd\n", "is not UTF-8"),
    ],
)
def test_bad_data_file_is_one_clear_line(tmp_path, capsys, content, problem):
    path = tmp_path / "data.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    line = _fails(tiny_fit_args(path, tmp_path / "ck"), capsys)
    assert line.startswith(f"error: --data.path {path}") and problem in line
    assert not (tmp_path / "ck").exists()


def test_unknown_config_key_is_jsonargparse_error(words_file, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  no_such_key: 1\n")
    line = _fails([*tiny_fit_args(words_file, tmp_path / "ck"), "--config", str(config)], capsys)
    assert "no_such_key" in line


def test_resume_without_an_earlier_run(words_file, tmp_path, capsys):
    line = _fails([*tiny_fit_args(words_file, tmp_path / "ck"), "--ckpt_path", "last"], capsys)
    assert line.startswith("error: no run named 'v4'")


def _eval_args(subcommand, words_file, ckpt):
    return [
        subcommand,
        "--config",
        str(ROOT / "configs/v4.yaml"),
        "--data.path",
        str(words_file),
        "--trainer.accelerator",
        "cpu",
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--ckpt_path",
        str(ckpt),
    ]


def test_predict_prints_items_from_a_checkpoint(words_file, tmp_path, capsys):
    run(tiny_fit_args(words_file, tmp_path / "ck", steps=20))
    capsys.readouterr()
    main(["predict", "--ckpt_path", str(tmp_path / "ck" / "v4-1" / "last.ckpt"), "--num_samples", "7"])
    items = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert len(items) == 7 and all(set(item) <= set(".abcdef") for item in items)


def test_checkpoint_vocabulary_must_match_the_data(words_file, tmp_path, capsys):
    run(tiny_fit_args(words_file, tmp_path / "ck", steps=20))
    other = tmp_path / "other.txt"
    other.write_text("xyz\nzyx\n" * 20)
    line = _fails(_eval_args("validate", other, tmp_path / "ck" / "v4-1" / "last.ckpt"), capsys)
    assert line.startswith("error: the checkpoint's vocabulary '.abcdef' differs")
