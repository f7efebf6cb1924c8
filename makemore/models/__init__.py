"""Model families, each a ``CharModel`` (``makemore.models.base``: the contract and the resolver).

Importing a family registers it, and a config names it as ``makemore.models.<Name>``: the line
below for each family is the whole registry, so a new family is its own file and one line here.
"""

from makemore.models.base import CharModel as CharModel
from makemore.models.base import build as build
from makemore.models.base import families as families
from makemore.models.base import nll as nll
from makemore.models.base import resolve as resolve
from makemore.models.bigram import Bigram as Bigram
from makemore.models.bow import BoW as BoW
from makemore.models.mlp import MLP as MLP
from makemore.models.recurrent import Recurrent as Recurrent
from makemore.models.transformer import Transformer as Transformer
from makemore.models.wavenet import WaveNet as WaveNet
from makemore.models.wrappers.ensemble import Ensemble as Ensemble
from makemore.models.wrappers.new_items import NewItems as NewItems
