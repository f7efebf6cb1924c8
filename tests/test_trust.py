"""A checkpoint someone sent, a resume after a killed start, two commands at once: each run as a
user runs it (``python -m makemore ...`` in a subprocess), checking what must not change.

Independent commands run two at a time, as in ``test_bad_inputs``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from makemore.cli import run

from .conftest import ROOT, tiny_fit_args, write_words
from .test_bad_inputs import ENV, makemore_many, snapshot

V4, LSTM = str(ROOT / "configs/v4.yaml"), str(ROOT / "configs/lstm.yaml")
QUIET = ["--trainer.enable_model_summary", "false", "--samples.every_n_steps", "0"]
DATA = ["--data.path", "words.txt", "--data.eval_tokens", "64", "--data.batches_per_epoch", "20"]
FIT = ["fit", "--config", V4, *DATA, *QUIET, "--checkpoint_root", "ck"]
EVAL = ["--config", V4, *DATA, *QUIET, "--checkpoint_root", "ck"]
RUN = "ck/v4-1"


def hostile(source: Path, target: Path, key: str, marker: str) -> None:
    """A checkpoint that loads with weights_only=True but names os.system as a class to build."""
    checkpoint = torch.load(source, weights_only=True)
    checkpoint["hyper_parameters"][key] = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}
    torch.save(checkpoint, target)


def flip_weight_bytes(source: Path, target: Path) -> None:
    """A copy of ``source`` with 64 bytes flipped inside its largest weight tensor."""
    weights = torch.load(source, weights_only=True)["state_dict"]
    tensor = max(weights.values(), key=lambda t: t.numel())
    data = bytearray(source.read_bytes())
    start = data.find(tensor.numpy().tobytes()[:256])
    assert start > 0
    data[start + 64 : start + 128] = bytes(b ^ 0xFF for b in data[start + 64 : start + 128])
    target.write_bytes(bytes(data))


def one_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and fragment in errors[0], result.stderr[-2000:]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's folder with one finished V4 run and the files a stranger could send."""
    folder = tmp_path_factory.mktemp("user")
    write_words(folder / "words.txt")
    run(tiny_fit_args(folder / "words.txt", folder / "ck", steps=20))
    last = folder / RUN / "last.ckpt"
    hostile(last, folder / "evil-optimizer.ckpt", "optimizer", "PWNED-optimizer")
    hostile(last, folder / "evil-scheduler.ckpt", "lr_scheduler", "PWNED-scheduler")
    hostile(last, folder / "last", "optimizer", "PWNED-last")  # a file named like the keyword
    evil_net = torch.load(last, weights_only=True)
    evil_net["hyper_parameters"]["net"] = {"class_path": "os.system", "init_args": {"command": "touch PWNED-net"}}
    torch.save(evil_net, folder / "evil-net.ckpt")
    huge = torch.load(last, weights_only=True)  # its weights as trained, its settings claiming 400 GB
    huge["hyper_parameters"]["net"]["init_args"]["n_hidden"] = 10**9
    torch.save(huge, folder / "huge.ckpt")
    flip_weight_bytes(last, folder / "damaged.ckpt")
    same_alphabet = sorted((folder / "words.txt").read_text().splitlines())  # same characters, other items
    (folder / "other.txt").write_text("\n".join(same_alphabet[::2]) + "\n")
    return folder


# name: (arguments, expected exit status, a fragment of the error line or None)
CASES = {
    "validate a hostile optimizer": (["validate", *EVAL, "--ckpt_path", "evil-optimizer.ckpt"], 0, None),
    "test a hostile scheduler": (["test", *EVAL, "--ckpt_path", "evil-scheduler.ckpt"], 0, None),
    "fit from a hostile optimizer": (
        [*FIT, "--trainer.max_steps", "30", "--ckpt_path", "evil-optimizer.ckpt"],
        2,
        "model.optimizer",
    ),
    "fit from a hostile scheduler": (
        [*FIT, "--trainer.max_steps", "30", "--ckpt_path", "evil-scheduler.ckpt"],
        2,
        "model.lr_scheduler",
    ),
    "validate a hostile net": (["validate", *EVAL, "--ckpt_path", "evil-net.ckpt"], 2, "not a makemore model"),
    "predict a hostile net": (["predict", "--ckpt_path", "evil-net.ckpt"], 2, "not a makemore model"),
    "predict a net claiming 400 GB": (["predict", "--ckpt_path", "huge.ckpt"], 2, "does not match its own net"),
    "validate a net claiming 400 GB": (["validate", *EVAL, "--ckpt_path", "huge.ckpt"], 2, "GB"),
    "validate damaged weights": (["validate", *EVAL, "--ckpt_path", "damaged.ckpt"], 2, "damaged"),
    "predict damaged weights": (["predict", "--ckpt_path", "damaged.ckpt"], 2, "damaged"),
    "resume another family": (
        ["fit", "--config", LSTM, *DATA, *QUIET, "--checkpoint_root", "ck", "--ckpt_path", f"{RUN}/last.ckpt"],
        2,
        "model.net makemore.models.Recurrent",
    ),
    "resume with another learning rate": (
        [*FIT, "--ckpt_path", "last", "--model.optimizer.init_args.lr", "0.05"],
        2,
        "model.optimizer.lr 0.05",
    ),
    "resume on another file": ([*FIT, "--ckpt_path", "last", "--data.path", "other.txt"], 2, "not the data file"),
    "resume with another split": ([*FIT, "--ckpt_path", "last", "--data.split_seed", "7"], 2, "data.split_seed 7"),
    "validate another file": (["validate", *EVAL, "--data.path", "other.txt"], 2, "not the data file"),
    "test another split": (["test", *EVAL, "--data.split_seed", "7"], 2, "--data.split_seed 7"),
}


def other_folders(workspace: Path, root: Path) -> dict[str, Path]:
    """Folders for the cases that need their own runs: ``default`` holds a run whose best
    checkpoint is hostile, ``named_last`` a run and a hostile file called ``last`` (apart: a
    resume there locks its run, which a default choice run at once would skip); in ``killed``, v4-1 finished and
    v4-2 was killed before its first checkpoint; in ``changed`` the training file was edited
    after training; ``elsewhere`` is empty."""
    folders = {name: root / name for name in ("default", "named_last", "killed", "elsewhere", "changed")}
    for folder in folders.values():
        folder.mkdir()
    last = workspace / RUN / "last.ckpt"
    for name in ("default", "named_last", "killed", "changed"):
        (folders[name] / RUN).mkdir(parents=True)
        (folders[name] / "words.txt").write_bytes((workspace / "words.txt").read_bytes())
        (folders[name] / RUN / "last.ckpt").write_bytes(last.read_bytes())
    (folders["named_last"] / "last").write_bytes((workspace / "last").read_bytes())
    hostile(last, folders["default"] / RUN / "best-step=20-val_loss=0.0001.ckpt", "optimizer", "PWNED")
    with open(folders["changed"] / "words.txt", "a") as f:  # the training file, edited since
        f.write("abcdef\n")
    moved = torch.load(last, weights_only=True)  # trained on that file, as the fingerprint says
    data = moved["datamodule_hyper_parameters"]
    data["path"] = data["data_file"]["path"] = str(folders["changed"] / "words.txt")
    torch.save(moved, folders["changed"] / RUN / "last.ckpt")
    (folders["killed"] / "ck/v4-2").mkdir()
    (folders["killed"] / "ck/v4-2/config.yaml").write_text("# what a fit killed before its first checkpoint leaves\n")
    return folders


@pytest.fixture(scope="module")
def outcomes(workspace, tmp_path_factory) -> dict:
    """Every command run once, two at a time; the workspace and ``killed`` snapshotted around."""
    folders = other_folders(workspace, tmp_path_factory.mktemp("others"))
    elsewhere = ["validate", "--config", V4, *QUIET, "--data.eval_tokens", "64", "--ckpt_path"]
    others = {
        "test by default": (["test", *EVAL], folders["default"]),
        "resume last by default": ([*FIT, "--trainer.max_steps", "25", "--ckpt_path", "last"], folders["named_last"]),
        "validate here": (["validate", *EVAL, "--ckpt_path", f"{RUN}/last.ckpt"], workspace),
        "validate elsewhere": ([*elsewhere, str(workspace / RUN / "last.ckpt")], folders["elsewhere"]),
        "resume after a killed start": ([*FIT, "--ckpt_path", "last"], folders["killed"]),
        "label with an edited file": (["predict", "--ckpt_path", f"{RUN}/last.ckpt"], folders["changed"]),
        "label with the file": (["predict", "--ckpt_path", f"{RUN}/last.ckpt"], workspace),
    }
    before = snapshot(workspace), snapshot(folders["killed"])
    commands = [(args, workspace) for args, _, _ in CASES.values()] + list(others.values())
    done = dict(zip([*CASES, *others], makemore_many(commands)))
    after = snapshot(workspace), snapshot(folders["killed"])
    return {"results": done, "before": before, "after": after, "folders": folders}


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_ends_as_it_must(outcomes, name):
    result, (_, status, fragment) = outcomes["results"][name], CASES[name]
    if fragment is None:
        assert result.returncode == status, result.stderr[-2000:]
    else:
        one_error(result, fragment)


def test_no_checkpoint_ran_code_and_no_case_changed_a_file(outcomes, workspace):
    assert not list(workspace.glob("PWNED*"))
    assert outcomes["after"][0] == outcomes["before"][0]


def test_a_hostile_file_picked_by_default_or_named_last_runs_nothing(outcomes):
    """``test`` with no checkpoint takes the newest run's best; ``fit --ckpt_path last`` means the
    run's last.ckpt, not the file called ``last`` beside the user."""
    tested, resumed = outcomes["results"]["test by default"], outcomes["results"]["resume last by default"]
    assert tested.returncode == 0 and "best-step=20-val_loss=0.0001" in tested.stderr, tested.stderr[-2000:]
    assert resumed.returncode == 0 and "checkpoint: ck/v4-1/last.ckpt" in resumed.stderr, resumed.stderr[-2000:]
    for folder in (outcomes["folders"]["default"], outcomes["folders"]["named_last"]):
        assert not list(folder.glob("PWNED*")) and not list(folder.glob("ck/PWNED*"))


def test_validate_takes_the_recorded_data_file_from_another_folder(outcomes):
    """No --data.path: the file the checkpoint was trained on, not the bundled names."""
    here, elsewhere = outcomes["results"]["validate here"], outcomes["results"]["validate elsewhere"]
    assert here.returncode == elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    loss = [line.split()[-1] for line in here.stdout.splitlines() if "val_loss" in line]
    assert loss and loss == [line.split()[-1] for line in elsewhere.stdout.splitlines() if "val_loss" in line]


def test_resume_after_a_killed_new_run_never_writes_into_the_older_run(outcomes):
    """v4-1 finished; v4-2 was killed before its first checkpoint: ``last`` means v4-2, which has
    nothing to resume, so the command refuses and v4-1 keeps every byte."""
    one_error(outcomes["results"]["resume after a killed start"], "ck/v4-2 has no last.ckpt")
    assert outcomes["after"][1] == outcomes["before"][1]


def test_a_run_being_written_refuses_a_second_resume_and_the_root_may_be_spelled_either_way(workspace, tmp_path):
    """A resume holds the run's lock; a second resume of it refuses. The first one names the
    root by its absolute path, the next by a relative one: one last.ckpt, never last-v1.ckpt.
    The temporary file of a killed checkpoint write is cleared at the next start."""
    user = tmp_path / "user"
    (user / RUN).mkdir(parents=True)
    (user / "words.txt").write_bytes((workspace / "words.txt").read_bytes())
    (user / RUN / "last.ckpt").write_bytes((workspace / RUN / "last.ckpt").read_bytes())
    (user / RUN / ".last.ckpt.4242.partial").write_bytes(b"half a checkpoint")
    absolute = [arg if arg != "ck" else str(user / "ck") for arg in FIT]
    long_run = subprocess.Popen(
        [sys.executable, "-m", "makemore", *absolute, "--trainer.max_steps", "100000", "--ckpt_path", "last"],
        cwd=user, env=ENV, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for line in long_run.stderr:  # the lock is held once the run directory is announced
            if line.startswith("run directory:"):
                break
        [second] = makemore_many([([*FIT, "--trainer.max_steps", "100000", "--ckpt_path", "last"], user)])
        one_error(second, "is being written by another fit")
    finally:
        long_run.send_signal(signal.SIGTERM)
        long_run.communicate(timeout=120)
    assert not list((user / RUN).glob("*.partial")) and not list((user / RUN).glob(".*.partial"))
    step = torch.load(user / RUN / "last.ckpt", weights_only=True)["global_step"]
    # With Python's default warning filters, as a user has them: resuming inside an epoch is exact
    # here, so Lightning's warning that it may not be is not shown.
    user_env = {key: value for key, value in ENV.items() if key != "PYTHONWARNINGS"}
    again = subprocess.run(
        [sys.executable, "-m", "makemore", *FIT, "--trainer.max_steps", str(step + 20), "--ckpt_path", "last"],
        cwd=user, env=user_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    assert "resuming from a checkpoint that ended before the epoch ended" not in again.stderr
    assert sorted(p.name for p in (user / RUN).glob("last*")) == ["last.ckpt"]
    assert torch.load(user / RUN / "last.ckpt", weights_only=True)["global_step"] == step + 20


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(workspace, tmp_path):
    """The run's folder on a 250 KB tmpfs (a private mount namespace): the first last.ckpt fits,
    a second one beside it does not."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace here")
    (tmp_path / "words.txt").write_bytes((workspace / "words.txt").read_bytes())
    (tmp_path / "ck").mkdir()
    fit = [*FIT, "--trainer.max_steps", "200", "--checkpoint.last_every_n_steps", "5", "--trainer.logger", "false"]
    command = " ".join([sys.executable, "-m", "makemore", *fit])
    check = 'from makemore.inference.loading import load; load("ck/v4-1/last.ckpt"); print("whole")'
    load = f"{sys.executable} -c '{check}'"
    script = f"mount -t tmpfs -o size=250k none ck || exit 9; {command}; status=$?; {load}; exit $status"
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    one_error(result, "no space left")
    assert "is kept whole" in result.stderr and result.stdout.strip().endswith("whole")


def test_racing_new_fits_never_share_a_run_directory(workspace, tmp_path):
    """Two fits of one config started together: each trains in its own directory, or the one
    that lost the race for ``v4-1`` says so in one line and leaves nothing behind."""
    (tmp_path / "words.txt").write_bytes((workspace / "words.txt").read_bytes())
    results = makemore_many([([*FIT, "--trainer.max_steps", "20"], tmp_path)] * 2)  # both at once
    won = [r for r in results if r.returncode == 0]
    for lost in (r for r in results if r.returncode != 0):
        one_error(lost, "was just taken by another run")
    assert won and sorted(p.name for p in (tmp_path / "ck").iterdir()) == [f"v4-{n + 1}" for n in range(len(won))]
    assert all((run_dir / "last.ckpt").is_file() for run_dir in (tmp_path / "ck").iterdir())


def test_samples_are_labelled_only_against_the_unchanged_training_file(outcomes):
    """An edited training file would label samples wrongly: none then, and stderr says why."""
    plain, edited = outcomes["results"]["label with the file"], outcomes["results"]["label with an edited file"]
    assert plain.returncode == edited.returncode == 0, edited.stderr[-2000:]
    assert all("\t" in line for line in plain.stdout.splitlines())
    assert not any("\t" in line for line in edited.stdout.splitlines()) and edited.stdout.strip()
    assert "samples not labelled" in edited.stderr and "is not the data file" in edited.stderr


def test_load_from_checkpoint_builds_only_what_makemore_allows(workspace, tmp_path, monkeypatch):
    """``CharLM.load_from_checkpoint``, the Lightning way to load a module from Python: a file
    naming a module to import, or os.system, is one line and runs nothing; a genuine one loads."""
    from makemore import CharLM
    from makemore.errors import MakemoreError

    (tmp_path / "dropper.py").write_text(f"open({str(tmp_path / 'PWNED-import')!r}, 'w').close()\nclass Net: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    last = workspace / RUN / "last.ckpt"
    for key in ("net", "optimizer", "lr_scheduler"):
        checkpoint = torch.load(last, weights_only=True)
        checkpoint["hyper_parameters"][key] = {"class_path": "dropper.Net", "init_args": {}}
        torch.save(checkpoint, tmp_path / f"import-{key}.ckpt")
    files = [*tmp_path.glob("import-*.ckpt"), *workspace.glob("evil-*.ckpt")]
    for path in files:
        with pytest.raises(MakemoreError, match=f"checkpoint {path} names"):
            CharLM.load_from_checkpoint(path)
    assert len(files) == 6 and not list(tmp_path.glob("PWNED*")) and not list(workspace.glob("PWNED*"))
    assert "dropper" not in sys.modules
    model = CharLM.load_from_checkpoint(last, compile=False)
    saved = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    setup, hparams = model.configure_optimizers(), torch.load(last, weights_only=True)["hyper_parameters"]
    optimizer = setup["optimizer"] if isinstance(setup, dict) else setup
    assert type(optimizer).__name__ == hparams["optimizer"]["class_path"].rpartition(".")[2]
    assert optimizer.defaults["lr"] == hparams["optimizer"]["init_args"]["lr"]
