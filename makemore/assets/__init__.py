"""Data shipped inside the package, found from wherever makemore is installed.

``names_2015.txt``: the bundled dataset (``scripts/build_dataset.py``). ``pretrained/<name>/``: a
model trained by this project on it, laid out as a run directory (its best checkpoint is named
``best-step=...-val_loss=...``), used when no run of one's own is there: ``predict`` with no run
under ``--checkpoint_root``, ``validate``/``test --config configs/<name>.yaml`` with no run of that
name. ``pretrained/v5/`` is V5 (``configs/v5.yaml``, 76,579 parameters), seed 42, 200,000 steps,
its best validation checkpoint (step 170,000: val 1.978, test 1.980 on the bundled split), cut to
weights, hyperparameters and data settings by ``scripts/make_pretrained.py`` (no optimizer state:
it samples, scores and evaluates, but cannot resume training).
"""

from pathlib import Path

PRETRAINED = Path(__file__).parent / "pretrained"
DEFAULT_PRETRAINED = "v5"  # what predict samples from when there is no run
