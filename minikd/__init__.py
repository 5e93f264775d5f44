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
from .tokens import (
    forward_kl,
    generalized_jsd,
    reverse_kl,
    skew_kl,
    skew_reverse_kl,
    token_divergence,
    topk_divergence,
)

# -- feature-based losses (features.py) --

# -- relation-based losses (relations.py) --

# -- networks, optimizers, training (layers.py, mlp.py, optim.py, train.py) --

# -- distillation trainer (distill.py) --

# -- library conventions (conventions.py) --

__version__ = "0.1.0"
