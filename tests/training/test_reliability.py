"""Exact resume after SIGKILL, atomic checkpoint writes, determinism, the divergence guard and
Ctrl-C: each checked on real runs of the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from makemore.cli import main, run
from makemore.files.atomic_io import save_atomically

from ..conftest import ROOT, curve, tiny_fit_args, write_words

# A Transformer small enough for a test, with dropout on: its masks come from the global RNG,
# so an exact resume must restore that too.
SMALL_TRANSFORMER = [
    "--model.net.init_args.n_layer", "1",
    "--model.net.init_args.n_head", "2",
    "--model.net.init_args.n_embd", "16",
]  # fmt: skip


def fit_args(words_file: Path, root: Path, config: str, steps: int, every: int = 50, bar: bool = False) -> list[str]:
    """A tiny fit; ``bar``: with the progress bar a user has on (a subprocess's bar goes to its stderr)."""
    args = tiny_fit_args(words_file, root, config=config, steps=steps)
    if bar:
        at = args.index("--trainer.enable_progress_bar")
        del args[at : at + 2]
    args += ["--checkpoint.last_every_n_steps", str(every), "--data.batches_per_epoch", "500"]
    return args + (SMALL_TRANSFORMER if "transformer" in config else [])


def weights(ckpt: Path) -> dict:
    return torch.load(ckpt, weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():  # bit for bit; the weight average's update count is a plain value
        assert torch.equal(value, b[name]) if torch.is_tensor(value) else value == b[name], name


def start(args: list[str]) -> subprocess.Popen:
    """The command in a child process; its output goes to a file, not a pipe that nobody reads
    while it runs: a progress bar would fill the pipe and stop the child at its next write."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "makemore", *args]
    output = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=output, text=True)
    process.output = output
    return process


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    """The child's exit status and what it wrote to stderr."""
    process.wait(timeout=timeout)
    process.output.seek(0)
    err = process.output.read()
    process.output.close()
    return process.returncode, err


def saved_step(ckpt: Path) -> int:
    try:
        return torch.load(ckpt, weights_only=True)["global_step"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


@pytest.mark.parametrize("config", ["configs/v5.yaml", "configs/transformer.yaml"])
def test_sigkill_then_resume_from_last_equals_an_unbroken_run(words_file, tmp_path, config):
    steps = 800  # validations at 500 (epochs of 500) and at the end
    bar = config.endswith("v5.yaml")  # one of the two as a user runs it
    unbroken = start(fit_args(words_file, tmp_path / "a", config, steps, every=100))
    broken = start(fit_args(words_file, tmp_path / "b", config, steps, every=100, bar=bar))
    name = Path(config).stem
    last = tmp_path / "b" / f"{name}-1" / "last.ckpt"
    deadline = time.monotonic() + 120
    while saved_step(last) < 300 and broken.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)  # somewhere after a checkpoint, maybe inside the next one
    broken.send_signal(signal.SIGKILL)
    assert finish(broken)[0] == -signal.SIGKILL
    killed_at = saved_step(last)
    assert 300 <= killed_at < steps  # really killed mid-run, with a loadable last.ckpt

    resume = [*fit_args(words_file, tmp_path / "b", config, steps, every=100, bar=bar), "--ckpt_path", "last"]
    code, err = finish(start(resume))
    assert code == 0 and "Traceback" not in err, err
    assert finish(unbroken)[0] == 0
    resumed, reference = weights(last), weights(tmp_path / "a" / f"{name}-1" / "last.ckpt")
    assert torch.load(last, weights_only=True)["global_step"] == steps
    assert_same_weights(resumed, reference)


@pytest.mark.parametrize("config", ["configs/v5.yaml", "configs/transformer.yaml"])
def test_same_config_and_seed_give_the_same_curve_and_weights(words_file, tmp_path, config):
    args = ["--trainer.log_every_n_steps", "5", "--data.batches_per_epoch", "20"]
    runs = [run([*fit_args(words_file, tmp_path / str(i), config, steps=60), *args]) for i in range(2)]
    assert_same_weights(*(cli.model.state_dict() for cli in runs))
    run_dirs = [tmp_path / str(i) / f"{Path(config).stem}-1" for i in range(2)]
    for tag in ("train_loss", "val_loss"):
        first, second = (curve(d, tag) for d in run_dirs)
        assert len(first) >= 3 and first == second


def test_a_save_that_dies_half_way_leaves_the_old_checkpoint(words_file, tmp_path, monkeypatch):
    run(fit_args(words_file, tmp_path, "configs/v4.yaml", steps=20))
    last = tmp_path / "v4-1" / "last.ckpt"
    before = weights(last)

    def torch_save_dies_half_way(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torch_save_dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_atomically({"state_dict": {}}, last)
    monkeypatch.undo()
    assert_same_weights(weights(last), before)  # still whole and loadable
    assert sorted(p.name for p in last.parent.glob(".*partial")) == []  # nothing left behind


def test_an_absurd_learning_rate_stops_with_one_line_and_no_checkpoint(words_file, tmp_path, capsys):
    args = [*fit_args(words_file, tmp_path, "configs/v4.yaml", steps=200), "--model.optimizer.init_args.lr", "1e6"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code != 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: training diverged: the loss is ") and " at step " in line
    assert "no checkpoint was written yet" in line and "lower the learning rate" in line
    assert list((tmp_path / "v4-1").glob("*.ckpt")) == []  # no untrained or diverged weights to pick up


def signalled(args: list[str], last: Path, signum: int) -> tuple[int, str, int]:
    """Start a fit, send ``signum`` some steps after its first validation wrote ``last`` (at step
    500); its exit status, stderr and the step ``last`` was saved at."""
    process = start(args)
    deadline = time.monotonic() + 120
    while saved_step(last) < 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the first validation's checkpoint: training has started
    time.sleep(0.5)
    process.send_signal(signum)
    code, err = finish(process)
    return code, err, saved_step(last)


SIGNAL_STEPS = 1500  # epochs of 500: the signal lands after the first validation, inside the second epoch


@pytest.fixture(scope="module")
def unbroken_v5(tmp_path_factory) -> dict:
    """The weights of an unbroken tiny V5 run, which every signal test's resumed run must equal."""
    root = tmp_path_factory.mktemp("unbroken")
    words = write_words(root / "words.txt")
    run(fit_args(words, root, "configs/v5.yaml", SIGNAL_STEPS, every=0))
    return weights(root / "v5-1" / "last.ckpt")


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1], ids=["ctrl-c", "sigterm", "sigusr1"]
)
def test_a_signal_writes_last_mid_epoch_and_the_resume_matches_an_unbroken_run(
    words_file, tmp_path, signum, unbroken_v5
):
    """As a user runs it: the progress bar on, stopped inside an epoch, resumed with --ckpt_path last."""
    last = tmp_path / "b" / "v5-1" / "last.ckpt"
    args = fit_args(words_file, tmp_path / "b", "configs/v5.yaml", SIGNAL_STEPS, every=0, bar=True)
    code, err, stopped = signalled(args, last, signum)
    assert code == 0 and "Traceback" not in err, err
    how = {signal.SIGINT: "interrupted", signal.SIGTERM: "SIGTERM", signal.SIGUSR1: "SIGUSR1"}[signum]
    assert 500 < stopped < SIGNAL_STEPS and stopped % 500 and f"{how} at step {stopped}: wrote" in err

    code, err = finish(start([*args, "--ckpt_path", "last"]))
    assert code == 0 and "Traceback" not in err, err
    assert_same_weights(weights(last), unbroken_v5)


def test_sigterm_during_a_validation_writes_last_and_exits_cleanly(words_file, tmp_path):
    # Lightning's loops stop there, before the block-end hook that handles SIGTERM between steps.
    args = fit_args(words_file, tmp_path, "configs/v5.yaml", 1000, every=0)
    sigterm = ["--trainer.callbacks+=tests.training.sigterm_callback.SigtermInValidation"]
    code, err = finish(start([*args, *sigterm]))
    assert code == 0 and "Traceback" not in err, err
    assert saved_step(tmp_path / "v5-1" / "last.ckpt") == 500 and "SIGTERM at step 500: wrote" in err


@pytest.mark.slow
def test_v5_killed_at_a_random_moment_resumes_to_the_same_val_loss(tmp_path):
    """The acceptance check at a real size: V5 on the bundled names, 20,000 steps, SIGKILL at a
    random moment after the first periodic checkpoint (about a minute on 2 cores)."""
    import random

    def args(root: Path) -> list[str]:
        return [
            "fit", "--config", str(ROOT / "configs/v5.yaml"), "--trainer.max_steps", "20000",
            "--trainer.enable_progress_bar", "false", "--checkpoint_root", str(root),
            "--samples.every_n_steps", "0", "--checkpoint.last_every_n_steps", "1000",
        ]  # fmt: skip

    unbroken, broken = start(args(tmp_path / "a")), start(args(tmp_path / "b"))
    last = tmp_path / "b" / "v5-1" / "last.ckpt"
    while saved_step(last) < 1000 and broken.poll() is None:
        time.sleep(0.05)
    time.sleep(random.uniform(0, 8))
    broken.send_signal(signal.SIGKILL)
    assert finish(broken)[0] == -signal.SIGKILL and 1000 <= saved_step(last) < 20000
    code, err = finish(start([*args(tmp_path / "b"), "--ckpt_path", "last"]), timeout=600)
    assert code == 0, err
    assert finish(unbroken, timeout=600)[0] == 0
    a, b = (torch.load(p / "v5-1" / "last.ckpt", weights_only=True) for p in (tmp_path / "a", tmp_path / "b"))
    assert_same_weights(a["state_dict"], b["state_dict"])
    # By step: a validation logged just before the kill may be logged again after the resume.
    assert dict(curve(tmp_path / "a" / "v5-1", "val_loss")) == dict(curve(tmp_path / "b" / "v5-1", "val_loss"))


def test_periodic_last_at_a_validation_step_still_saves_the_best_checkpoint(words_file, tmp_path):
    args = fit_args(words_file, tmp_path, "configs/v4.yaml", steps=40, every=20)
    run([*args, "--data.batches_per_epoch", "20", "--checkpoint.save_top_k", "-1"])
    run_dir = tmp_path / "v4-1"
    assert sorted(p.name.split("-val")[0] for p in run_dir.glob("best-*")) == ["best-step=20", "best-step=40"]
    last = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert next(iter(last["callbacks"].values()))["current_score"] is not None  # saved after validating
