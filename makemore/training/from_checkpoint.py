"""What a checkpoint may decide for ``fit``, ``validate`` and ``test``: plain, checked values only.

A checkpoint is a file someone may have sent: it can name the net (one of makemore's families,
with sizes that are plain values), its vocabulary and block size, and the data it was trained on;
never a class, function or module to import. Evaluation takes the net and the data from it;
resuming checks that the command asks for the same net, optimizer and data, since an exact
resume of anything else would be a silent lie.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

from makemore.data.datamodule import NamesDataModule
from makemore.digests import same_file
from makemore.errors import MakemoreError
from makemore.models import resolve
from makemore.models.base import spec_of
from makemore.training.factories import optimizer_factory, plain_scalar, scheduler_factory

SPLIT_KEYS = ("split_seed", "train_fraction", "val_fraction")


def plain(value):
    """A config value (jsonargparse Namespaces included) as dicts, lists and scalars."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _check_plain(value, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, where)
    elif not plain_scalar(value):
        raise MakemoreError(f"{where} holds {type(value).__name__} {value!r}, not a plain setting")


def net_spec(checkpoint: dict, path) -> dict:
    """The checkpoint's net as ``{"class_path", "init_args"}``: a makemore family (wrappers'
    members too) with plain settings, or one line."""
    spec = plain(checkpoint["hyper_parameters"].get("net"))
    if not isinstance(spec, dict) or not isinstance(spec.get("init_args", {}), dict):
        raise MakemoreError(f"checkpoint {path} names no net makemore can build")
    _check_plain(spec, f"checkpoint {path}: net")
    _resolve_all(spec, f"checkpoint {path} names net")
    return {"class_path": spec["class_path"], "init_args": dict(spec.get("init_args") or {})}


def module_settings(checkpoint: dict, path) -> dict:
    """``CharLM``'s arguments from a checkpoint alone: a makemore family with plain sizes, an
    optimizer and schedule of torch or makemore (``factories``), and plain values. Run-time
    choices (compiling) are left to the caller."""
    saved = checkpoint["hyper_parameters"]
    what = f"checkpoint {path} names"
    family, init_args = spec_of(net_spec(checkpoint, path), f"{what} net")
    settings = {"net": functools.partial(family, **init_args)}
    for key in ("chars", "block_size", "ema_decay", "decay_vectors", "pack"):
        if key in saved:
            _check_plain(saved[key], f"checkpoint {path}: {key}")
            settings[key] = saved[key]
    if saved.get("optimizer") is not None:
        settings["optimizer"] = optimizer_factory(plain(saved["optimizer"]), f"{what} optimizer")
    settings["lr_scheduler"] = scheduler_factory(plain(saved.get("lr_scheduler")), f"{what} lr_scheduler")
    return settings


def _resolve_all(value, what: str) -> None:
    """Every class path in a net's settings (an Ensemble's members) is a makemore family."""
    if isinstance(value, dict):
        if "class_path" in value:
            resolve(value["class_path"], what)
        for item in value.values():
            _resolve_all(item, what)
    elif isinstance(value, list):
        for item in value:
            _resolve_all(item, what)


def _same_class(a, b) -> bool:
    return str(a).rpartition(".")[2] == str(b).rpartition(".")[2]


def _differences(recorded: dict | None, asked: dict | None, name: str) -> list[str]:
    """What ``asked`` changes of ``recorded`` (class paths, then the settings both hold)."""
    recorded, asked = recorded or {}, asked or {}
    if not recorded and not asked:
        return []
    if not recorded or not asked or not _same_class(recorded.get("class_path"), asked.get("class_path")):
        return [f"{name} {asked.get('class_path')} (the checkpoint's: {recorded.get('class_path')})"]
    mine, theirs = recorded.get("init_args") or {}, asked.get("init_args") or {}
    return [  # None asks for the value derived from the run (a schedule's total_steps: max_steps)
        f"{name}.{key} {theirs[key]!r} (the checkpoint's: {mine[key]!r})"
        for key in sorted(set(mine) & set(theirs))
        if theirs[key] is not None and mine[key] != theirs[key]
    ]


def check_resume(config, checkpoint: dict, path) -> None:
    """Resuming continues the same run exactly: the same net, optimizer, schedule, weight
    average and split as the checkpoint's (the data file itself: ``check_data``)."""
    saved, data = checkpoint["hyper_parameters"], checkpoint.get("datamodule_hyper_parameters") or {}
    model = plain(config.model)
    changes = _differences(net_spec(checkpoint, path), model.get("net"), "model.net")
    changes += _differences(plain(saved.get("optimizer")), model.get("optimizer"), "model.optimizer")
    changes += _differences(plain(saved.get("lr_scheduler")), model.get("lr_scheduler"), "model.lr_scheduler")
    if saved.get("ema_decay") != model.get("ema_decay"):
        changes.append(f"model.ema_decay {model.get('ema_decay')} (the checkpoint's: {saved.get('ema_decay')})")
    changes += [
        f"data.{key} {config.data[key]} (the checkpoint's: {data[key]})"
        for key in SPLIT_KEYS
        if key in data and data[key] != config.data[key]
    ]
    if changes:
        raise MakemoreError(
            f"--ckpt_path {path} resumes its run exactly, but this command changes {'; '.join(changes)}; "
            "drop the changes (or use the config it was trained with) to resume, or train a new run without "
            "--ckpt_path"
        )


def _default(key: str):
    return inspect.signature(NamesDataModule).parameters[key].default


def evaluation_settings(config, checkpoint: dict, path) -> dict:
    """The ``model`` and ``data`` settings to evaluate the checkpoint with: its net and weight
    average, the data file it was trained on unless one is given, and its split (the block size
    follows from the data, and ``CharLM`` checks it against the checkpoint's).
    A split given on the command line that disagrees is one line, not a wrong figure."""
    saved, data = checkpoint["hyper_parameters"], checkpoint.get("datamodule_hyper_parameters") or {}
    model = {"net": net_spec(checkpoint, path), "ema_decay": saved.get("ema_decay")}
    _check_plain(model["ema_decay"], f"checkpoint {path}: ema_decay")
    settings = {}
    for key in SPLIT_KEYS:
        if key not in data:
            continue
        _check_plain(data[key], f"checkpoint {path}: data.{key}")
        given = config.data[key]
        if given != _default(key) and given != data[key]:
            raise MakemoreError(
                f"--data.{key} {given} is not the split {path} was trained with ({key} {data[key]}): its "
                f"validation and test items would include training items; drop --data.{key}"
            )
        settings[key] = data[key]
    if config.data.path is None:
        settings["path"] = recorded_data_path(data)
    return {"model": model, "data": settings}


def recorded_data_path(data: dict) -> str | None:
    """The data file a checkpoint was trained on (None: the bundled one)."""
    if data.get("path") is None:
        return None
    recorded = (data.get("data_file") or {}).get("path") or data["path"]
    if not isinstance(recorded, str) or not Path(recorded).is_file():
        raise MakemoreError(
            f"the checkpoint was trained on {recorded}, which is not there any more; pass --data.path with "
            "that file (moved or copied is fine: its contents are checked)"
        )
    return recorded


def check_data(checkpoint: dict, fingerprint: dict, path) -> None:
    """The data file is the one the checkpoint was trained on (same size and digest)."""
    recorded = (checkpoint.get("datamodule_hyper_parameters") or {}).get("data_file")
    if isinstance(recorded, dict) and not same_file(recorded, fingerprint):
        raise MakemoreError(
            f"{fingerprint['path']} is not the data file {path} was trained on ({recorded.get('path')}, "
            f"{recorded.get('size')} bytes); pass --data.path with that file"
        )
