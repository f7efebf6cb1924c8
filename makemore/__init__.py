"""makemore: autoregressive character-level language models, hand-built, trained with Lightning.

``from makemore import CharLM, NamesDataModule`` gives the LightningModule and the data module
(``makemore.models`` the families); they are imported on first use, so the command line's help
and ``predict`` start without loading Lightning.
"""

__version__ = "0.1.0"

__all__ = ["CharLM", "NamesDataModule"]


def __getattr__(name: str):
    if name == "CharLM":
        from makemore.training.module import CharLM

        return CharLM
    if name == "NamesDataModule":
        from makemore.data.datamodule import NamesDataModule

        return NamesDataModule
    raise AttributeError(f"module 'makemore' has no attribute {name!r}")
