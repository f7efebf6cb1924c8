"""The layers of the package point one way: ``makemore/nn`` and what training and inference both
need (``files``, ``sampling``, ``data``, ``models``) import neither ``training`` nor ``inference``,
and ``training`` and ``inference`` do not import each other. Only the command line on top
(``cli.py``, ``__main__.py``, and ``optim.py``, the old class paths of checkpoints) may import both.
Every import counts, those inside functions included."""

import ast
from pathlib import Path

import makemore

PACKAGE = Path(makemore.__file__).parent
TRAINING, INFERENCE = "makemore.training", "makemore.inference"
BELOW_BOTH = ("makemore.nn", "makemore.files", "makemore.sampling", "makemore.data", "makemore.models")
MAY_NOT_IMPORT = {
    **{layer: (TRAINING, INFERENCE) for layer in BELOW_BOTH},
    TRAINING: (INFERENCE,),
    INFERENCE: (TRAINING,),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (relative imports resolved)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from makemore import training`
    return found


def inside(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def wrong_way(path: Path) -> list[str]:
    name = module_name(path)
    rules = [banned for layer, banned in MAY_NOT_IMPORT.items() if inside(name, layer)]
    return sorted(
        f"{name} imports {target}"
        for target in imports(path)
        for banned in rules
        for layer in banned
        if inside(target, layer)
    )


def test_every_layer_imports_only_downwards():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40  # the walk found the package
    problems = [problem for path in modules for problem in wrong_way(path)]
    assert problems == []


def test_the_check_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    fake = tmp_path / "makemore"
    (fake / "nn").mkdir(parents=True)
    (fake / "inference").mkdir()
    (fake / "nn" / "layers.py").write_text("def f():\n    from makemore.training.optim import SGD\n")
    (fake / "inference" / "predict.py").write_text("from ..training import runs\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert wrong_way(fake / "nn" / "layers.py") == [
        "makemore.nn.layers imports makemore.training.optim",
        "makemore.nn.layers imports makemore.training.optim.SGD",  # a name or a module: both are listed
    ]
    assert wrong_way(fake / "inference" / "predict.py") == [
        "makemore.inference.predict imports makemore.training",
        "makemore.inference.predict imports makemore.training.runs",
    ]
