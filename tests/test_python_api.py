"""The README's "From Python" block, run exactly as written in a fresh folder, and again with the
Trainer flags users add to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from makemore import CharLM

from .conftest import ROOT

FLAGS = 'gradient_clip_val=1.0, accumulate_grad_batches=2, precision="bf16-mixed"'


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


@pytest.mark.parametrize("flags", ["", FLAGS], ids=["as-written", "clip-accumulate-bf16"])
def test_the_readme_python_block_trains_with_a_plain_trainer(tmp_path, flags):
    code = readme_block()
    call = re.search(r"L\.Trainer\(max_steps=\d+\)", code)
    assert call is not None  # the README passes nothing else to Trainer(
    if flags:
        code = code.replace(call[0], f"{call[0][:-1]}, {flags})")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.strip().splitlines()[-1]
    loss = float(re.match(r"val_loss (\d+\.\d+):", line)[1])
    assert loss < 2.6 and len(line.split(":", 1)[1].split(",")) == 5  # learnt, and five samples
    if flags:
        return
    # Lightning's own checkpoint of that run: its settings are plain, so it loads back from
    # Python and predict samples from it.
    [checkpoint] = (tmp_path / "lightning_logs").glob("version_0/checkpoints/*.ckpt")
    model = CharLM.load_from_checkpoint(checkpoint)
    assert type(model.net).__name__ == "Transformer" and model.hparams["net"]["init_args"]["n_embd"] == 32
    predicted = subprocess.run(
        [sys.executable, "-m", "makemore", "predict", "--ckpt_path", str(checkpoint), "--num_samples", "3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert predicted.returncode == 0 and "3 samples" in predicted.stderr + predicted.stdout, predicted.stderr[-2000:]
