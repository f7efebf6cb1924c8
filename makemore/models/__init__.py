"""Model families. Every net maps ``idx (B, T)`` token ids to logits; see ``CharLM``."""

from makemore.models.wavenet import WaveNet

__all__ = ["WaveNet"]
