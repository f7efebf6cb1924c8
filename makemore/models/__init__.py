"""Model families, each a ``CharModel`` (``makemore.models.base``: the contract and the resolver).

Importing a family registers it; a config names it as ``makemore.models.<Name>``. The line
below for each family is the whole registry: a new family is its file and one line here.
"""

from makemore.models.base import CharModel, build, families, nll, resolve
from makemore.models.bigram import Bigram
from makemore.models.bow import BoW
from makemore.models.mlp import MLP
from makemore.models.recurrent import Recurrent
from makemore.models.transformer import Transformer
from makemore.models.wavenet import WaveNet
from makemore.models.wrappers.ensemble import Ensemble
from makemore.models.wrappers.new_items import NewItems

__all__ = ["CharModel", "build", "families", "nll", "resolve"]
__all__ += ["Bigram", "BoW", "MLP", "Recurrent", "Transformer", "WaveNet", "Ensemble", "NewItems"]
