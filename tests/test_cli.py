"""In-process runs of the CLI on a tiny config: fit, validate, test, resume, and bad input."""

import importlib.util
import math
import warnings

import pytest
import torch

from makemore.cli import main, run

from .conftest import CONFIGS, ROOT, curve, fails, tiny_fit_args


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
        "--data.eval_tokens",
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
    line = fails(tiny_fit_args(path, tmp_path / "ck"), capsys)
    assert line.startswith(f"error: --data.path {path}") and problem in line
    assert not (tmp_path / "ck").exists()


def test_unknown_config_key_is_jsonargparse_error(words_file, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  no_such_key: 1\n")
    line = fails([*tiny_fit_args(words_file, tmp_path / "ck"), "--config", str(config)], capsys)
    assert "no_such_key" in line


def test_resume_without_an_earlier_run(words_file, tmp_path, capsys):
    line = fails([*tiny_fit_args(words_file, tmp_path / "ck"), "--ckpt_path", "last"], capsys)
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
    ckpt = tmp_path / "ck" / "v4-1" / "last.ckpt"
    line = fails(_eval_args("validate", other, ckpt), capsys)
    assert "other.txt is not the data file" in line and "words.txt" in line
    # A checkpoint from before data files were fingerprinted: the vocabulary still tells.
    older = torch.load(ckpt, weights_only=True)
    del older["datamodule_hyper_parameters"]["data_file"]
    torch.save(older, tmp_path / "older.ckpt")
    line = fails(_eval_args("validate", other, tmp_path / "older.ckpt"), capsys)
    assert line.startswith("error: the checkpoint's vocabulary '.abcdef' differs")


def test_validate_and_test_find_the_newest_runs_checkpoint_and_log_nothing(words_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "checkpoints"
    run(tiny_fit_args(words_file, root, steps=20))
    run(tiny_fit_args(words_file, root, steps=40))
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    capsys.readouterr()
    args = ["--config", str(ROOT / "configs/v4.yaml"), "--data.path", str(words_file), "--trainer.accelerator", "cpu"]
    validated = run(["validate", *args])
    best = next((root / "v4-2").glob("best-*.ckpt"))
    assert f"checkpoint: checkpoints/v4-2/{best.name}" in capsys.readouterr().err
    score = torch.load(best, weights_only=True)["callbacks"]
    assert validated.trainer.callback_metrics["val_loss"].item() == pytest.approx(
        next(iter(score.values()))["best_model_score"].item(), abs=1e-5
    )
    run(["test", *args, "--ckpt_path", "last"])
    assert "checkpoint: checkpoints/v4-2/last.ckpt" in capsys.readouterr().err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # no lightning_logs/version_N
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "words.txt"]


def test_validate_on_a_fresh_clone_evaluates_the_shipped_pretrained_v5(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    validated = run(["validate", "--config", str(ROOT / "configs/v5.yaml"), "--trainer.enable_progress_bar", "false"])
    assert f"checkpoint: {ROOT / 'makemore/assets/pretrained/v5'}/best-" in capsys.readouterr().err
    assert validated.trainer.callback_metrics["val_loss"].item() < 2.1  # trained, not a fresh model (3.3)


def test_a_run_shorter_than_an_epoch_still_validates_at_its_end(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path, steps=30), "--checkpoint.save_top_k", "-1"])
    assert [step for step, _ in curve(tmp_path / "v4-1", "val_loss")] == [20, 30]
    assert sorted(p.name.split("-val")[0] for p in (tmp_path / "v4-1").glob("best-*")) == [
        "best-step=20",
        "best-step=30",
    ]


def test_fast_dev_run_writes_no_checkpoint_and_no_run_directory(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path / "ck"), "--trainer.fast_dev_run", "true"])
    assert not (tmp_path / "ck").exists() or list((tmp_path / "ck").iterdir()) == []


def test_the_schedule_ends_with_the_runs_max_steps(words_file, tmp_path):
    args = tiny_fit_args(words_file, tmp_path, config="configs/lstm.yaml", steps=30)
    cli = run([*args, "--model.lr_scheduler.init_args.warmup_steps", "5"])
    scheduler, optimizer = cli.model.lr_schedulers(), cli.model.optimizers()
    assert scheduler.total_steps == 30
    floor = scheduler.base_lrs[0] * scheduler.min_factor
    assert optimizer.param_groups[0]["lr"] == pytest.approx(floor)  # at its floor when the run ends


def test_the_schedule_ends_with_max_epochs(words_file, tmp_path):
    args = tiny_fit_args(words_file, tmp_path, config="configs/lstm.yaml", steps=-1)
    cli = run([*args, "--trainer.max_epochs", "2", "--model.lr_scheduler.init_args.warmup_steps", "5"])
    assert cli.model.lr_schedulers().total_steps == 40 and cli.trainer.global_step == 40  # 2 epochs of 20


def test_max_time_ends_the_run_validated_with_its_last_checkpoint(words_file, tmp_path):
    """Lightning's Timer stops the run (inside an epoch, most likely): it still validates, keeps its
    best and its last.ckpt, and a resume continues from there."""
    args = [*tiny_fit_args(words_file, tmp_path, steps=10**6), "--trainer.max_time", "00:00:00:02"]
    cli = run(args)
    stopped_at = cli.trainer.global_step
    assert 0 < stopped_at < 10**6
    assert "val_loss" in cli.trainer.callback_metrics
    run_dir = tmp_path / "v4-1"
    assert (run_dir / "last.ckpt").is_file() and list(run_dir.glob("best-step=*.ckpt"))
    assert torch.load(run_dir / "last.ckpt", weights_only=True)["global_step"] == stopped_at
    resumed = run([*args[:-1], "00:00:00:03", "--ckpt_path", "last"])  # a second more
    assert resumed.trainer.global_step > stopped_at


def test_overfit_batches_trains_on_the_same_batches_over_and_over(words_file, tmp_path):
    cli = run([*tiny_fit_args(words_file, tmp_path, steps=20), "--trainer.overfit_batches", "2"])
    assert cli.trainer.global_step == 20 and cli.trainer.current_epoch == 10  # epochs of the same 2 batches
    loader = cli.trainer.train_dataloader  # Lightning's: its first batches, in order
    assert cli.trainer.num_training_batches == 2
    assert all(torch.equal(batch, loader.dataset[i]) for i, (batch, _) in enumerate(zip(loader, range(2))))


@pytest.mark.parametrize("config", ["configs/v4.yaml", "configs/lstm.yaml"])  # our SGD, torch's AdamW
def test_the_schedule_sees_the_optimizer_step_first(words_file, tmp_path, config):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(tiny_fit_args(words_file, tmp_path, config=config, steps=10))
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_default_root_dir_is_where_the_runs_go(words_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a for a in tiny_fit_args(words_file, tmp_path / "unused", steps=5) if a != str(tmp_path / "unused")]
    args.remove("--checkpoint_root")
    run([*args, "--trainer.default_root_dir", str(tmp_path / "mine")])
    assert (tmp_path / "mine" / "v4-1" / "last.ckpt").is_file() and not (tmp_path / "checkpoints").exists()


def test_a_run_that_fails_before_its_first_step_leaves_no_directory(words_file, tmp_path, capsys, monkeypatch):
    from makemore.errors import MakemoreError
    from makemore.training.module import CharLM

    def refuse(self):
        raise MakemoreError("refused at the start")

    monkeypatch.setattr(CharLM, "on_fit_start", refuse)
    assert fails(tiny_fit_args(words_file, tmp_path / "ck"), capsys) == "error: refused at the start"
    assert list((tmp_path / "ck").iterdir()) == []


def test_fit_validates_a_fixed_subset_then_the_whole_split_at_its_end(words_file, tmp_path):
    cli = run([*tiny_fit_args(words_file, tmp_path, steps=40), "--data.val_items", "5"])
    dm, model = cli.datamodule, cli.model.eval()
    chosen = dm.splits["val_during_fit"]
    assert len(chosen) == 5 and set(chosen) <= set(dm.splits["val"])
    assert (
        chosen
        == run(tiny_fit_args(words_file, tmp_path / "again", steps=1) + ["--data.val_items", "5"]).datamodule.splits[
            "val_during_fit"
        ]
    )
    during = [value for _, value in curve(tmp_path / "v4-1", "val_loss")]
    x, y = dm.tensors("val_during_fit")
    with torch.no_grad():
        assert during[1] == pytest.approx(torch.nn.functional.cross_entropy(model(x), y).item(), abs=1e-5)
        x, y = dm.tensors("val")
        whole = torch.nn.functional.cross_entropy(model(x), y).item()
    assert cli.trainer.callback_metrics["val_loss"].item() == pytest.approx(whole, abs=1e-5)  # the end: all of it


def test_a_checkpoint_from_before_the_package_layout_still_evaluates(words_file, tmp_path):
    run(tiny_fit_args(words_file, tmp_path / "ck", steps=20))
    checkpoint = torch.load(tmp_path / "ck" / "v4-1" / "last.ckpt", weights_only=True)
    for key in ("optimizer", "lr_scheduler"):  # the class paths such checkpoints hold
        spec = checkpoint["hyper_parameters"][key]
        spec["class_path"] = spec["class_path"].replace("makemore.training.optim.", "makemore.optim.")
    torch.save(checkpoint, tmp_path / "old.ckpt")
    args = ["validate", "--config", str(ROOT / "configs/v4.yaml"), "--data.path", str(words_file)]
    validated = run([*args, "--trainer.logger", "false", "--ckpt_path", str(tmp_path / "old.ckpt")])
    assert 0 < validated.trainer.callback_metrics["val_loss"].item() < 3


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_is_applied_at_every_optimizer_step(words_file, tmp_path, algorithm):
    args = tiny_fit_args(words_file, tmp_path, steps=20)
    start = {k: v.clone() for k, v in run(args[1:], subcommand=False).model.net.named_parameters()}  # seeded init

    def moved(cli) -> float:
        return max((p - start[k]).abs().max().item() for k, p in cli.model.net.named_parameters())

    clip = ["--trainer.gradient_clip_val", "1e-9", "--trainer.gradient_clip_algorithm", algorithm]
    assert moved(run([*args, *clip])) < 1e-6  # 20 SGD steps of lr 0.1 on gradients clipped to 1e-9
    assert moved(run(tiny_fit_args(words_file, tmp_path / "free", steps=20))) > 1e-3


def test_bf16_mixed_trains_a_batchnorm_net_as_float32_does(words_file, tmp_path):
    args = tiny_fit_args(words_file, tmp_path, config="configs/v5.yaml", steps=40)
    bf16 = run([*args, "--trainer.precision", "bf16-mixed"]).trainer.callback_metrics["val_loss"].item()
    fp32 = run(tiny_fit_args(words_file, tmp_path / "fp32", config="configs/v5.yaml", steps=40))
    assert bf16 == pytest.approx(fp32.trainer.callback_metrics["val_loss"].item(), abs=0.05)
    assert bf16 < math.log(8)  # learnt: below uniform over 7 characters and the boundary


@pytest.mark.parametrize("config", [path.name for path in CONFIGS if path.name != "bigram.yaml"])
def test_bf16_mixed_with_clipping_trains_every_config(words_file, tmp_path, config):
    args = [*tiny_fit_args(words_file, tmp_path, config=f"configs/{config}", steps=3), "--data.batches_per_epoch", "3"]
    cli = run([*args, "--trainer.precision", "bf16-mixed", "--trainer.gradient_clip_val", "1.0"])
    assert cli.trainer.global_step == 3 and math.isfinite(cli.trainer.callback_metrics["val_loss"].item())


def test_checkpointing_off_writes_no_checkpoint(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path, steps=20), "--trainer.enable_checkpointing", "false"])
    assert (tmp_path / "v4-1").is_dir() and list((tmp_path / "v4-1").glob("*.ckpt")) == []


@pytest.mark.parametrize(
    "flag, problem",
    [
        (["--trainer.accumulate_grad_batches", "0"], "whole number >= 1"),
        (["--trainer.barebones", "true"], "barebones"),  # Lightning's own word: fit logs val_loss
        (["--trainer.accelerator", "mps"], "MPSAccelerator"),  # Lightning's own word, in one line
        (["--trainer.precision", "transformer-engine"], "pip install"),  # a package it needs is missing
    ],
)
def test_flags_that_cannot_apply_are_one_line(words_file, tmp_path, capsys, flag, problem):
    if flag[-1] == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an MPS device")
    assert problem in fails([*tiny_fit_args(words_file, tmp_path / "ck"), *flag], capsys)
    assert not (tmp_path / "ck").exists() or list((tmp_path / "ck").iterdir()) == []


def test_a_logger_whose_package_is_missing_is_one_line(words_file, tmp_path, capsys):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    line = fails([*tiny_fit_args(words_file, tmp_path / "ck"), "--trainer.logger+=WandbLogger"], capsys)
    assert line.startswith("error: lightning.pytorch.loggers.WandbLogger: Requirement 'wandb")
    assert not (tmp_path / "ck").exists() or list((tmp_path / "ck").iterdir()) == []


def test_accumulating_two_batches_makes_one_optimizer_step(words_file, tmp_path):
    small = ["--model.net.init_args.n_layer", "1", "--model.net.init_args.n_embd", "16"]
    same = [*small, "--model.net.init_args.dropout", "0", "--model.ema_decay", "null"]  # no random masks

    def fit(name: str, batch: str, *extra: str):
        args = tiny_fit_args(words_file, tmp_path / name, config="configs/transformer.yaml", steps=10)
        return run([*args, *same, "--data.batch_size", batch, *extra])

    two = fit("two", "4", "--trainer.accumulate_grad_batches", "2")
    assert two.trainer.global_step == 10  # optimizer steps
    assert two.trainer.train_dataloader.state_dict() == {"next_batch": 20}  # of two batches each


def test_val_check_interval_counts_optimizer_steps(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path, steps=30), "--trainer.val_check_interval", "10"])
    assert [step for step, _ in curve(tmp_path / "v4-1", "val_loss")] == [10, 20, 30]


@pytest.mark.parametrize(
    "logger",
    [
        ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "elsewhere"],
        ["--trainer.logger+=CSVLogger"],  # added to TensorBoard's, with no save_dir (which CSVLogger requires)
    ],
)
def test_a_csv_logger_writes_into_the_run_directory(words_file, tmp_path, monkeypatch, logger):
    monkeypatch.chdir(tmp_path)
    run([*tiny_fit_args(words_file, tmp_path / "ck", steps=20), *logger])
    assert (tmp_path / "ck" / "v4-1" / "metrics.csv").is_file() and not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "words.txt"]  # nothing in the working folder


def test_limit_train_batches_counts_optimizer_steps(words_file, tmp_path):
    run([*tiny_fit_args(words_file, tmp_path, steps=24), "--trainer.limit_train_batches", "8"])
    assert [step for step, _ in curve(tmp_path / "v4-1", "val_loss")] == [8, 16, 24]


def test_a_runs_saved_config_starts_a_new_run_and_leaves_the_old_one_alone(words_file, tmp_path):
    run(tiny_fit_args(words_file, tmp_path, steps=20))
    old = tmp_path / "v4-1"
    before = files(old)
    saved = tmp_path / "saved.yaml"  # a copy, so the new run takes its name from it
    saved.write_text((old / "config.yaml").read_text())
    run(["fit", "--config", str(saved), "--trainer.max_steps", "10", "--checkpoint_root", str(tmp_path)])
    assert files(old) == before and (tmp_path / "saved-1" / "last.ckpt").is_file()


def test_16_mixed_scales_the_loss_with_the_precision_plugins_scaler(words_file, tmp_path):
    # Lightning gives 16-mixed a GradScaler on a GPU only; here one is handed to it on the CPU.
    import lightning as L
    from lightning.pytorch.plugins.precision import MixedPrecision

    cli = run(tiny_fit_args(words_file, tmp_path, config="configs/v5.yaml")[1:], subcommand=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # overflows at first: steps skipped, scale lowered
    plugin = MixedPrecision("16-mixed", "cpu", scaler=scaler)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(max_steps=30, plugins=[plugin], **quiet)
    trainer.fit(cli.model, datamodule=cli.datamodule)
    assert trainer.global_step == 30 and scaler.get_scale() < 2.0**40
    assert trainer.callback_metrics["val_loss"].item() < math.log(8)  # it learnt


def test_lightnings_callbacks_do_their_job_in_a_run(words_file, tmp_path):
    callbacks = [
        *("--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor", "val_loss"),
        *("--trainer.callbacks.patience", "1", "--trainer.callbacks.min_delta", "100"),  # no validation is better
        *("--trainer.callbacks+=LearningRateMonitor", "--trainer.callbacks+=DeviceStatsMonitor"),
        *("--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.filename", "extra-{step}"),
    ]
    args = tiny_fit_args(words_file, tmp_path, steps=60)
    cli = run([*args, "--data.batches_per_epoch", "10", "--trainer.log_every_n_steps", "5", *callbacks])
    assert cli.trainer.global_step == 20  # stopped by EarlyStopping at its second validation
    run_dir = tmp_path / "v4-1"
    assert (run_dir / "last.ckpt").is_file() and (run_dir / "extra-step=20.ckpt").is_file()
    assert [step for step, _ in curve(run_dir, "lr-SGD")] == [4, 9, 14, 19]
    assert any("cpu_percent" in tag for tag in _tags(run_dir))


def _tags(run_dir) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]


@pytest.mark.parametrize("precision, dtype", [("bf16-true", torch.bfloat16), ("64-true", torch.float64)])
def test_true_precisions_train_in_their_dtype(words_file, tmp_path, precision, dtype):
    args = tiny_fit_args(words_file, tmp_path, config="configs/v5.yaml", steps=40)
    cli = run([*args, "--trainer.precision", precision])
    assert {p.dtype for p in cli.model.net.parameters()} == {dtype}
    assert cli.trainer.callback_metrics["val_loss"].item() < math.log(8)  # learnt
