"""minikd: knowledge distillation from scratch in NumPy.

Every loss returns its value and its closed-form gradient (``LossGrad``); every gradient is
checked against finite differences (:mod:`minikd.gradcheck`). See ``docs/conventions.md`` for
the conventions (shape letters, KL direction, reduction, where T² lives, what alpha weighs).
"""

from . import gradcheck
from ._reduce import LossGrad
from .softmax import log_softmax, log_softmax_vjp, softmax, softmax_vjp

# -- response-based losses (losses.py) --

# -- token-level losses for sequence models (tokens.py) --

# -- feature-based losses (features.py) --
# isort: split
from .features import (
    attention_transfer_loss,
    cosine_loss,
    hint_loss,
    init_regressor,
    regressor_backward,
    regressor_forward,
)

# -- relation-based losses (relations.py) --
# isort: split
from .relations import pkt_loss, rkd_angle_loss, rkd_distance_loss, sp_loss

# -- networks, optimizers, training (layers.py, mlp.py, optim.py, train.py) --

# -- distillation trainer (distill.py) --

# -- library conventions (conventions.py) --

__version__ = "0.1.0"
