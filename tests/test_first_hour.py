"""The first hour of a user: the help, quiet runs that say what matters, a printed config that
runs anywhere, and default checkpoints that are never those of a run still being written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from makemore.assets import PRETRAINED
from makemore.cli import main
from makemore.files.runs import RunLock, evaluation_checkpoint
from makemore.inference import predict as predict_module

from . import test_bad_inputs
from .conftest import ROOT, write_words

NOISE = [
    "litlogger",  # Lightning's advertisement
    "LeafSpec",  # a deprecation inside Lightning
    "FLOPs",  # the model summary
    "GPU available",
    "TPU available",
    "dirpath",  # "dirpath has changed ... won't be reloaded" on validate
    "log_every_n_steps",  # "training batches (4) < log_every_n_steps" where logging works
    "Seed set to",
    "Traceback",
]
# A user's environment: Python's default warning filters (the other subprocess tests ignore them all).
USER_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"} | {"OMP_NUM_THREADS": "1"}


def noise_in(done: subprocess.CompletedProcess) -> list[str]:
    text = done.stdout + done.stderr
    found = [word for word in NOISE if word in text]
    return found + [line for line in text.splitlines() if re.match(r"\s*step\s{2,}", line)]  # a results-table row


def test_a_users_fit_validate_test_and_predict_say_what_matters_and_nothing_else(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(test_bad_inputs, "ENV", USER_ENV)
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    write_words(here / "words.txt")
    # Default settings (progress bar, summary, logger, samples), tiny sizes; the data by a relative path.
    fit = ["fit", "--config", str(ROOT / "configs/v4.yaml"), "--data.path", "words.txt", "--trainer.max_steps", "40"]
    fit += ["--data.batches_per_epoch", "20", "--data.eval_tokens", "64"]
    monkeypatch.chdir(here)
    with pytest.raises(SystemExit):
        main([*fit, "--print_config"])  # in this process: it trains nothing
    printed = capsys.readouterr().out
    assert "\nbase:" not in printed and "\nconfig:" not in printed  # the bases are applied: no key names them
    assert f"path: {here / 'words.txt'}\n" in printed  # absolute: the same file from any folder
    (elsewhere / "mine.yaml").write_text(printed)
    fitted, again = test_bad_inputs.makemore_many([(fit, here), (["fit", "--config", "mine.yaml"], elsewhere)])
    assert fitted.returncode == 0 and not noise_in(fitted), fitted.stderr
    last = fitted.stderr.splitlines()[-1]
    best = re.fullmatch(r"best: (checkpoints/v4-1/best-step=\d+-val_loss=[\d.]+\.ckpt) \(val_loss [\d.]+\) "
                        r"after 40 steps in \d+s", last)  # fmt: skip
    assert best and (here / best[1]).is_file(), last
    assert again.returncode == 0 and again.stderr.splitlines()[-1].startswith("best: checkpoints/mine-1/best-step=")

    evaluate = ["--config", str(ROOT / "configs/v4.yaml"), "--data.eval_tokens", "64"]
    validated, tested, predicted = test_bad_inputs.makemore_many(
        [(["validate", *evaluate], here), (["test", *evaluate], here), (["predict", "--num_samples", "3"], here)]
    )
    for done in (validated, tested, predicted, again):
        assert done.returncode == 0 and not noise_in(done), (done.args, done.stdout, done.stderr)
    assert "val_loss" in validated.stdout and "test_loss" in tested.stdout  # the results tables, without a step row
    assert len(predicted.stdout.splitlines()) == 3


def test_the_top_level_help_is_makemores_and_comes_without_importing_lightning():
    code = (
        "import sys, atexit; "
        "atexit.register(lambda: print('lightning' in sys.modules, 'torch' in sys.modules, file=sys.stderr)); "
        "from makemore.__main__ import main; main()"
    )
    started = time.monotonic()
    helped, bare = (
        subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=USER_ENV)
        for args in (["--help"], [])
    )
    assert time.monotonic() - started < 10  # each well under a second where Lightning's import takes seconds
    assert (helped.returncode, bare.returncode) == (0, 2)
    assert helped.stdout == bare.stdout and helped.stdout.startswith("usage: python -m makemore ")
    assert helped.stderr.splitlines()[-1] == bare.stderr.splitlines()[-1] == "False False"
    described = {
        line.split()[0]: line
        for line in helped.stdout.splitlines()
        if re.match(r"  (fit|validate|test|predict) ", line)
    }
    assert "train" in described["fit"] and "evaluate" in described["validate"] and "evaluate" in described["test"]
    assert "sample" in described["predict"] and "score" in described["predict"]


def test_each_commands_help_says_what_it_does_and_predicts_shows_defaults(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith("usage: python -m makemore [options] fit")
    assert "Train a model from a config" in out and "--base" not in out
    text = predict_module.parser().format_help()
    assert "(default: 20)" in text and "(default: 1.0)" in text and "(default: checkpoints)" in text


def _runs(root: Path) -> tuple[Path, Path]:
    """Two runs of the shipped V5: ``v5-1``, and ``v5-2`` written later."""
    shipped = next((PRETRAINED / "v5").glob("best-*.ckpt"))
    for n in (1, 2):
        (root / f"v5-{n}").mkdir(parents=True)
        shutil.copy(shipped, root / f"v5-{n}" / shipped.name)
        os.utime(root / f"v5-{n}" / shipped.name, (n, n))
    return root / "v5-1" / shipped.name, root / "v5-2" / shipped.name


def test_a_run_that_a_fit_is_writing_is_skipped_by_predict_validate_and_test(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    older, newer = _runs(Path("checkpoints"))
    assert predict_module.newest_best_checkpoint("checkpoints") == newer
    assert evaluation_checkpoint("checkpoints", "v5") == newer
    lock = RunLock(newer.parent)
    lock.acquire()  # as a fit holds it while it writes there
    try:
        capsys.readouterr()
        assert predict_module.newest_best_checkpoint("checkpoints") == older
        assert evaluation_checkpoint("checkpoints", "v5") == older
        assert capsys.readouterr().err.count("skipping checkpoints/v5-2: a fit is writing it right now") == 2
        main(["predict", "--num_samples", "2", "--seed", "0"])
        err = capsys.readouterr().err
        assert "skipping checkpoints/v5-2" in err and f"checkpoint: checkpoints/v5-1/{older.name}" in err
        args = ["--config", str(ROOT / "configs/v5.yaml"), "--trainer.limit_val_batches", "2"]
        main(["validate", *args, "--trainer.enable_progress_bar", "false"])
        err = capsys.readouterr().err
        assert "skipping checkpoints/v5-2" in err and f"checkpoint: checkpoints/v5-1/{older.name}" in err
    finally:
        lock.release()
    assert evaluation_checkpoint("checkpoints", "v5") == newer  # written no more: the newest again
