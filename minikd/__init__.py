"""minikd: knowledge distillation from scratch in NumPy.

Every loss returns its value and its closed-form gradient (``LossGrad``); every gradient is
checked against finite differences (:mod:`minikd.gradcheck`). See ``docs/conventions.md`` for
the conventions (shape letters, KL direction, reduction, where T² lives, what alpha weighs).

The package is built in floors, each importing only the ones below it:
``losses`` (softmax, response, DKD, tokens, features, relations), ``nn`` (layers, MLP,
optimizers, schedules, model files), ``training`` (the loop and the distiller), ``verify``
(gradcheck, conventions, golden vectors, self-check), ``experiments`` (data and the jobs) and
``cli``. This namespace re-exports the public API of all of them.
"""

__version__ = "0.1.0"

# -- losses: (loss, grad) functions --
from .losses import (
    LossGrad,
    attention_transfer_loss,
    cosine_loss,
    cross_entropy,
    distillation_loss,
    dkd_loss,
    forward_kl,
    generalized_jsd,
    hint_loss,
    kd_loss,
    kl_divergence,
    log_softmax,
    log_softmax_vjp,
    pkt_loss,
    reverse_kl,
    rkd_angle_loss,
    rkd_distance_loss,
    skew_kl,
    skew_reverse_kl,
    soft_cross_entropy,
    softmax,
    softmax_vjp,
    sp_loss,
    token_divergence,
    topk_divergence,
)

# -- networks: layers, MLP, optimizers, schedules --
from .nn import (
    MLP,
    SGD,
    Adam,
    AdamW,
    CosineSchedule,
    ForwardCache,
    NonFiniteUpdateError,
    StepSchedule,
    clip_grad_norm,
    dropout_backward,
    dropout_forward,
    init_regressor,
    linear_backward,
    linear_forward,
    regressor_backward,
    regressor_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)

# -- training: the loop and the distiller --
from .training import Distiller, History, NonFiniteLossError, distill, fit, train_loop

# -- verification: gradcheck, library conventions, golden vectors --
from .verify import CONVENTIONS, Convention, at_loss_as, gradcheck, kd_loss_as, rkd_loss_as, vectors
from .verify import diagnose, diagnose_inputs

# -- experiments: minikd.data.* (data sets and transfer-set tools) --
from .experiments import data
