"""makemore: autoregressive character-level language models, hand-built, trained with Lightning."""

__version__ = "0.1.0"
