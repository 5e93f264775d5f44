"""minikd: knowledge distillation from scratch in NumPy.

Every loss returns its value and its closed-form gradient (``LossGrad``); every gradient is
checked against finite differences (:mod:`minikd.gradcheck`). See ``docs/conventions.md`` for
the conventions (shape letters, KL direction, reduction, where T² lives, what alpha weighs).
"""

from . import data, gradcheck
from ._reduce import LossGrad
from .softmax import log_softmax, log_softmax_vjp, softmax, softmax_vjp

# -- response-based losses (losses.py) --
from .losses import (
    cross_entropy,
    distillation_loss,
    kd_loss,
    kl_divergence,
    soft_cross_entropy,
)

# -- decoupled KD (dkd.py; builds on losses.py's boundary helpers) --
# isort: split
from .dkd import dkd_loss

# -- token-level losses for sequence models (tokens.py) --
# isort: split
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

# -- networks, optimizers, training (layers.py, mlp.py, optim.py, schedules.py, train.py) --
# isort: split
from .layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)
from .mlp import MLP, ForwardCache
from .optim import SGD, Adam, AdamW, NonFiniteUpdateError
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm
from .train import History, NonFiniteLossError, fit, train_loop

# -- distillation trainer (distill.py) --
# isort: split
from .distill import Distiller, distill

# -- library conventions (conventions.py) --
from .conventions import CONVENTIONS, Convention, at_loss_as, kd_loss_as, rkd_loss_as

# -- datasets and transfer-set tools (data.py): used as minikd.data.* (imported above) --

__version__ = "0.1.0"
