"""Model families. Every net maps ``idx (B, T)`` token ids to logits; see ``CharLM``.

A net's ``examples`` attribute says which data it reads: ``windows`` (a fixed context ->
the next token) or ``sequences`` (whole items -> every next token).
"""

from makemore.models.bigram import Bigram
from makemore.models.mlp import MLP
from makemore.models.recurrent import Recurrent
from makemore.models.transformer import Transformer
from makemore.models.wavenet import WaveNet
from makemore.models.wrappers.ensemble import Ensemble
from makemore.models.wrappers.new_items import NewItems

__all__ = ["Bigram", "Ensemble", "MLP", "NewItems", "Recurrent", "Transformer", "WaveNet"]
