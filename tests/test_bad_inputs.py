"""Every mistake a user makes through ``python -m makemore ...`` ends in one ``error:`` line and a
non-zero exit, with no traceback and nothing changed that the command was not asked to change.

The commands run as a user runs them, each in its own process, two at a time; the processes are
forked from one that imported makemore once (``tests/forked.py``), as most cases fail at start-up
and would otherwise cost the 3 s of importing torch and Lightning each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from makemore.cli import run

from .conftest import ROOT, tiny_fit_args, write_words

V4, LSTM = str(ROOT / "configs/v4.yaml"), str(ROOT / "configs/lstm.yaml")
MLP = str(ROOT / "configs/mlp.yaml")
TINY = ["--data.path", "words.txt", "--trainer.max_steps", "5", "--checkpoint_root", "ck"]
CKPT = "ck/v4-1/last.ckpt"

# name: (arguments after ``python -m makemore``, a fragment of the error line)
CASES = {
    "predict over an existing file": (["predict", "--ckpt_path", CKPT, "--output", "words.txt"], "--overwrite"),
    "predict into a missing folder": (["predict", "--ckpt_path", CKPT, "--output", "nowhere/out.txt"], "nowhere"),
    "predict into a file's folder": (["predict", "--ckpt_path", CKPT, "--output", "words.txt/out.txt"], "words.txt"),
    "score a missing file": (["predict", "--ckpt_path", CKPT, "--score_file", "missing.txt"], "--score_file"),
    "score an unknown item": (["predict", "--ckpt_path", CKPT, "--score", "abc", "xyz"], "1 of 2 items"),
    "validate with no run": (["validate", "--config", V4, *TINY[:2], "--checkpoint_root", "empty"], "train one"),
    "test the last of no run": (
        ["test", "--config", V4, *TINY[:2], "--run_name", "nope", "--ckpt_path", "last"],
        "nope",
    ),
    "fit from a missing checkpoint": (["fit", "--config", V4, *TINY, "--ckpt_path", "missing.ckpt"], "does not exist"),
    "fit from a truncated checkpoint": (["fit", "--config", V4, *TINY, "--ckpt_path", "half.ckpt"], "truncated"),
    "fit from a text file": (["fit", "--config", V4, *TINY, "--ckpt_path", "words.txt"], "not a checkpoint"),
    "validate a truncated checkpoint": (
        ["validate", "--config", V4, *TINY[:2], "--ckpt_path", "half.ckpt"],
        "truncated",
    ),
    "test a text file": (["test", "--config", V4, *TINY[:2], "--ckpt_path", "words.txt"], "not a checkpoint"),
    "three items": (["fit", "--config", V4, *TINY, "--data.path", "three.txt"], "2/0/1 for train/val/test"),
    "one item": (["fit", "--config", V4, *TINY, "--data.path", "one.txt"], "0/0/1 for train/val/test"),
    "batch of zero": (["fit", "--config", V4, *TINY, "--data.batch_size", "0"], "data.batch_size must be"),
    "negative batch": (["fit", "--config", V4, *TINY, "--data.batch_size", "-3"], "data.batch_size must be"),
    "batch above the split": (["fit", "--config", V4, *TINY, "--data.batch_size", "100000"], "training examples"),
    "negative learning rate": (["fit", "--config", V4, *TINY, "--model.optimizer.init_args.lr", "-0.1"], "lr"),
    "negative max_steps": (["fit", "--config", V4, *TINY, "--trainer.max_steps", "-5"], "max_steps must be"),
    "one item far too long": (["fit", "--config", LSTM, *TINY, "--data.path", "long.txt"], "max_item_length"),
    "run folder under a file": (["fit", "--config", V4, *TINY, "--checkpoint_root", "words.txt/ck"], "writable"),
    "two roots": (["fit", "--config", V4, *TINY, "--trainer.default_root_dir", "elsewhere"], "pass one of them"),
    "Lightning's --optimizer": (["fit", "--config", LSTM, *TINY, "--optimizer", "Adam"], "--optimizer"),
    "a value of the wrong type": (["fit", "--config", V4, *TINY, "--data.batch_size", "x"], "data.batch_size"),
    # A net's sizes and rates, a net too large for the machine, a schedule that turns the rate negative
    "negative hidden size": (["fit", "--config", V4, *TINY, "--model.net.init_args.n_hidden", "-5"], "n_hidden must"),
    "embeddings of zero": (["fit", "--config", V4, *TINY, "--model.net.init_args.n_embd", "0"], "n_embd must be"),
    "a billion hidden units": (["fit", "--config", MLP, *TINY, "--model.net.init_args.n_hidden", "1000000000"], " GB "),
    "a window of a billion": (["fit", "--config", MLP, *TINY, "--data.block_size", "1000000000"], " GB "),
    "a sequence of a billion": (["fit", "--config", LSTM, *TINY, "--data.block_size", "1000000000"], "max_item_length"),
    "samples every -1 steps": (["fit", "--config", V4, *TINY, "--samples.every_n_steps", "-1"], "every_n_steps"),
    "a billion samples": (["fit", "--config", V4, *TINY, "--samples.num_samples", "1000000000"], "num_samples"),
    "dropout above 1": (["fit", "--config", LSTM, *TINY, "--model.net.init_args.dropout", "1.5"], "init_args.dropout"),
    "a negative decay factor": (["fit", "--config", V4, *TINY, "--model.lr_scheduler.init_args.gamma", "-1"], "gamma"),
    "floor of -1": (["fit", "--config", LSTM, *TINY, "--model.lr_scheduler.init_args.min_factor", "-1"], "min_factor"),
    # Files that are not regular files, and every predict option's bad value
    "a FIFO as data": (["fit", "--config", V4, *TINY, "--data.path", "fifo"], "is a FIFO (named pipe), not a regular"),
    "/dev/null as data": (["fit", "--config", V4, *TINY, "--data.path", "/dev/null"], "is a character device"),
    "a link loop as data": (["fit", "--config", V4, *TINY, "--data.path", "loop"], "is a symbolic link loop"),
    "a folder as data": (["fit", "--config", V4, *TINY, "--data.path", "empty"], "empty is a directory"),
    "predict at a NaN temperature": (["predict", "--ckpt_path", CKPT, "--temperature", "nan"], "--temperature must"),
    "predict at an infinite temperature": (["predict", "--ckpt_path", CKPT, "--temperature", "inf"], "finite"),
    "predict a seed past 2**64": (["predict", "--ckpt_path", CKPT, "--seed", str(2**70)], "--seed must be in"),
    "predict a negative seed": (["predict", "--ckpt_path", CKPT, "--seed=-1"], "--seed must be in"),
    "predict a billion items": (["predict", "--ckpt_path", CKPT, "--num_samples", str(10**9)], "10,000,000"),
    "predict a word as a count": (["predict", "--ckpt_path", CKPT, "--num_samples", "x"], "invalid int value: 'x'"),
    "predict a NaN top_p": (["predict", "--ckpt_path", CKPT, "--top_p", "nan"], "--top_p must be in (0, 1]"),
    "predict a huge max_length": (["predict", "--ckpt_path", CKPT, "--max_length", str(10**12)], "--max_length"),
    "predict an unknown option": (["predict", "--ckpt_path", CKPT, "--bogus"], "unrecognized arguments: --bogus"),
    "score no item": (["predict", "--ckpt_path", CKPT, "--score"], "--score: expected at least one argument"),
    "predict an empty checkpoint path": (["predict", "--ckpt_path", ""], "--ckpt_path is empty"),
    "predict from /dev/null": (["predict", "--ckpt_path", "/dev/null"], "is a character device"),
    "score a folder": (["predict", "--ckpt_path", CKPT, "--score_file", "empty"], "empty is a directory"),
    "score a FIFO": (["predict", "--ckpt_path", CKPT, "--score_file", "fifo"], "is a FIFO (named pipe)"),
    "score /dev/null": (["predict", "--ckpt_path", CKPT, "--score_file", "/dev/null"], "is a character device"),
    # Not /dev/null itself: a predict that wrongly replaced it (as root, it could) broke the machine.
    "predict over a device": (["predict", "--ckpt_path", CKPT, "--output", "null", "--overwrite"], "not a regular"),
    "predict over a folder": (["predict", "--ckpt_path", CKPT, "--output", "empty", "--overwrite"], "is a directory"),
    "predict over a dangling link": (["predict", "--ckpt_path", CKPT, "--output", "dangling"], "dangling exists"),
    "predict through a link loop": (
        ["predict", "--ckpt_path", CKPT, "--output", "loop", "--overwrite"],
        "is a symbolic link loop",
    ),
}


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # one thread: two run at once


def makemore(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "makemore", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``: a folder as '', a link as its target, a FIFO or
    device as 'special' (reading a FIFO would block), a file as its content's hash."""

    def seen(p: Path) -> str:
        if p.is_symlink():
            return f"-> {os.readlink(p)}"
        return "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "special"

    return {str(p.relative_to(folder)): seen(p) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's folder: a word list, odd data files, bad checkpoints, and one trained run."""
    folder = tmp_path_factory.mktemp("user")
    words = write_words(folder / "words.txt")
    (folder / "three.txt").write_text("abc\nbcd\ncde\n")
    (folder / "one.txt").write_text("abc\n")
    (folder / "long.txt").write_text("abc\ncab\n" * 20 + "ab" * 2000 + "\n")
    (folder / "empty").mkdir()
    os.mkfifo(folder / "fifo")  # reading it would block: it must be refused unopened
    try:
        os.mknod(folder / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except OSError:  # not allowed to make devices here
        os.mkfifo(folder / "null")
    (folder / "loop").symlink_to("loop")
    (folder / "dangling").symlink_to("nowhere")
    run(tiny_fit_args(words, folder / "ck", steps=10))
    (folder / "half.ckpt").write_bytes((folder / CKPT).read_bytes()[:2000])
    return folder


def makemore_many(commands: list[tuple[list[str], Path]]) -> list[subprocess.CompletedProcess]:
    """``makemore(args, cwd)`` for each ``(args, cwd)``, two at a time, each a process of its own
    forked from one that imported makemore once (``tests/forked.py``): the same commands as
    ``python -m makemore``, without paying some 3 s of imports for each."""
    with tempfile.TemporaryDirectory() as out:
        jobs = [
            {"args": args, "cwd": str(cwd), "out": f"{out}/{i}.out", "err": f"{out}/{i}.err"}
            for i, (args, cwd) in enumerate(commands)
        ]
        runner = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("forked.py"))],
            input=json.dumps(jobs), env=ENV, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert runner.returncode == 0, runner.stderr[-2000:]
        statuses = json.loads(runner.stdout.splitlines()[-1])
        return [
            subprocess.CompletedProcess(job["args"], status, Path(job["out"]).read_text(), Path(job["err"]).read_text())
            for job, status in zip(jobs, statuses)
        ]


def run_cases(cases: dict, workspace: Path) -> dict:
    """Every case run once, with the workspace snapshotted around them all."""
    before = snapshot(workspace)
    done = dict(zip(cases, makemore_many([(case[0], workspace) for case in cases.values()])))
    return {"results": done, "before": before, "after": snapshot(workspace)}


@pytest.fixture(scope="module")
def outcomes(workspace) -> dict:
    return run_cases(CASES, workspace)


@pytest.mark.parametrize("name", list(CASES))
def test_one_error_line_and_a_non_zero_exit(outcomes, name):
    result = outcomes["results"][name]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and len(errors) == 1, result.stderr[-2000:]
    assert CASES[name][1] in errors[0]


def test_no_case_changed_created_or_removed_anything(outcomes):
    assert outcomes["after"] == outcomes["before"]


def test_predict_keeps_an_existing_output_byte_for_byte_and_overwrites_when_asked(workspace, tmp_path):
    target = tmp_path / "samples.txt"
    target.write_bytes(b"my own\nlist\n")
    args = ["predict", "--ckpt_path", str(workspace / CKPT), "--num_samples", "3", "--output", str(target)]
    refused = makemore(args, tmp_path)
    assert refused.returncode == 2 and target.read_bytes() == b"my own\nlist\n"
    assert "pass --overwrite" in refused.stderr
    replaced = makemore([*args, "--overwrite"], tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    samples = [line.split("\t")[0] for line in replaced.stdout.splitlines()]  # item, then its label
    assert target.read_text().splitlines() == samples and not list(tmp_path.glob(".*partial"))


def test_a_read_only_checkpoint_folder_is_one_line(workspace, tmp_path):
    """A read-only mount (root may write anywhere else), made in a private mount namespace."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("no private mount namespace here")
    shutil.copy(workspace / "words.txt", tmp_path)
    (tmp_path / "ro").mkdir()
    command = " ".join([sys.executable, "-m", "makemore", "fit", "--config", V4, *TINY[:4], "--checkpoint_root", "ro"])
    script = f"mount -t tmpfs none ro && mount -o remount,ro ro && exec {command}"
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and "Read-only file system" in errors[0] and "writable" in errors[0]
