"""The package as a user installs it: a wheel, in a fresh virtual environment, run from a folder
that holds nothing of the repository (its shipped model and data are package data)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "makemore/assets/pretrained/v5/best-step=170000-val_loss=1.9780.ckpt"


def call(*args, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_an_installed_wheel_predicts_from_an_empty_folder_with_the_shipped_model(tmp_path):
    # A copy of what the wheel is built from: the build writes build/ and *.egg-info next to it.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "makemore", source / "makemore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    # Without setuptools here (a bare CI Python), pip fetches it from the registry into an isolated build.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    call(*pip, "wheel", "--no-deps", *isolation, "-w", tmp_path / "dist", source)  # a path: never a registry name
    (wheel,) = (tmp_path / "dist").glob("makemore-*.whl")

    venv = tmp_path / "venv"  # torch and the rest from this Python; makemore only from the wheel
    call(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv)
    python = venv / "bin" / "python"
    call(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # not the source tree
    env["OMP_NUM_THREADS"] = "1"
    empty = tmp_path / "empty"
    empty.mkdir()
    where = call(python, "-c", "import makemore; print(makemore.__file__)", cwd=empty, env=env).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), f"makemore imported from {where}, not the wheel"

    done = call(venv / "bin" / "makemore", "predict", "--num_samples", "3", "--seed", "1", cwd=empty, env=env)
    assert len(done.stdout.splitlines()) == 3
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("checkpoint: ")]
    used = Path(line.removeprefix("checkpoint: "))
    assert used.resolve().is_relative_to(venv.resolve()) and used.as_posix().endswith(SHIPPED), line
    assert "the pretrained v5 shipped with makemore" in done.stderr
    assert list(empty.iterdir()) == []  # nothing written where it ran
