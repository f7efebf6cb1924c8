"""Where checkpoints written before the package layout name their optimizer and schedule
(``makemore.optim.SGD``...): they live in ``makemore.training.optim`` now, and these names let
those checkpoints still load in ``validate``, ``test`` and ``fit --ckpt_path``."""

from makemore.training.optim import SGD as SGD
from makemore.training.optim import MilestoneDecay as MilestoneDecay
from makemore.training.optim import WarmupCosine as WarmupCosine
