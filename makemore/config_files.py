"""Config files that build on others (a top-level ``base:`` key) and name data files by
relative paths: both resolved before jsonargparse parses the command line."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from makemore.errors import MakemoreError


def with_bases(args: list[str]) -> list[str]:
    """Each ``--config FILE`` preceded by the configs it builds on: a config's top-level ``base:``
    names another config, applied first, so FILE holds only what differs from it. A data file
    named by a relative path (on the command line or in a config) is named by its absolute path,
    so the resolved config (``--print_config``, a run's config.yaml) means it from any folder."""
    out, rest = [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("--config", "--data.path") and rest:
            arg = f"{arg}={rest.pop(0)}"
        key, _, value = arg.partition("=")
        if key == "--config":
            chain = _chain(value)
            out += [item for path in chain for item in ("--config", path)]
            named = [found for path in chain if (found := _data_path(path)) is not None]
            out += ["--data.path", _absolute(named[-1])] if named and isinstance(named[-1], str) else []
        elif key == "--data.path":
            out += [key, _absolute(value)]
        else:
            out.append(arg)
    return out


def _absolute(path: str) -> str:
    """A relative file path made absolute (as the parser would read it from here); null stays."""
    return path if path in ("", "null", "None") or os.path.isabs(path) else os.path.abspath(path)


def _data_path(path: str) -> str | bool | None:
    """What a config file gives as ``data.path``: a relative path, True for anything else, None for nothing."""
    try:
        content = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    data = content.get("data") if isinstance(content, dict) else None
    if not isinstance(data, dict) or "path" not in data:
        return None
    found = data["path"]
    return found if isinstance(found, str) and not os.path.isabs(found) else True


def _chain(path: str, seen: tuple[str, ...] = ()) -> list[str]:
    """The configs ``path`` builds on, base first, then ``path`` itself."""
    try:
        content = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return [path]  # not readable here: the parser says what is wrong with it
    base = content.get("base") if isinstance(content, dict) else None
    if not base:
        return [path]
    base = str(Path(path).parent / base)
    if base in seen:
        raise MakemoreError(f"config {path} builds on {base}, which builds on it again; break the loop of base: keys")
    return [*_chain(base, (*seen, path)), path]
