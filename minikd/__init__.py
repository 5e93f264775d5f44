"""minikd: knowledge distillation from scratch in NumPy.

Every loss returns its value and its closed-form gradient (``LossGrad``); every gradient is
checked against finite differences (:mod:`minikd.gradcheck`). See ``docs/conventions.md`` for
the conventions (shape letters, KL direction, reduction, where T² lives, what alpha weighs).

The package is built in floors, each importing only the ones below it:
``losses`` (softmax, response, DKD, tokens, features, relations), ``nn`` (layers, MLP,
optimizers, schedules, model files), ``training`` (the loop and the distiller), ``verify``
(gradcheck, conventions, golden vectors, self-check, diagnosis), ``experiments`` (data and the
jobs) and ``cli``. This namespace re-exports the public API of all of them, listed below by the
floor that defines each name. A name's floor is imported the first time the name is used
(PEP 562), so ``import minikd`` itself is instant: the ``minikd`` command's start-up can then be
interrupted with Ctrl-C without a traceback.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "losses": [  # (loss, grad) functions and the softmax
        "LossGrad", "attention_transfer_loss", "cosine_loss", "cross_entropy",
        "distillation_loss", "dkd_loss", "forward_kl", "generalized_jsd", "hint_loss",
        "kd_loss", "kl_divergence", "log_softmax", "log_softmax_vjp", "pkt_loss", "reverse_kl",
        "rkd_angle_loss", "rkd_distance_loss", "skew_kl", "skew_reverse_kl",
        "soft_cross_entropy", "softmax", "softmax_vjp", "sp_loss", "token_divergence",
        "topk_divergence",
    ],
    "nn": [  # layers, the MLP, optimizers, schedules, the FitNets regressor
        "MLP", "SGD", "Adam", "AdamW", "CosineSchedule", "ForwardCache",
        "NonFiniteUpdateError", "StepSchedule", "clip_grad_norm", "dropout_backward",
        "dropout_forward", "init_regressor", "linear_backward", "linear_forward",
        "regressor_backward", "regressor_forward", "relu_backward", "relu_forward",
        "tanh_backward", "tanh_forward",
    ],
    "training": ["Distiller", "History", "NonFiniteLossError", "distill", "fit", "train_loop"],
    "verify": [  # gradcheck, library conventions, golden vectors, diagnosis
        "CONVENTIONS", "Convention", "at_loss_as", "diagnose", "diagnose_inputs", "gradcheck",
        "kd_loss_as", "rkd_loss_as", "vectors",
    ],
    "experiments": ["data"],  # minikd.data.*: data sets and transfer-set tools
}
_FLOOR = {name: floor for floor, names in _EXPORTS.items() for name in names}
__all__ = sorted(_FLOOR)


def __getattr__(name):
    """``minikd.<name>``: the public name from its floor, or a floor itself (``minikd.nn``)."""
    if name in _FLOOR:
        value = getattr(importlib.import_module(f".{_FLOOR[name]}", __name__), name)
    elif name in (*_EXPORTS, "cli"):
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'minikd' has no attribute {name!r}")
    globals()[name] = value  # found once; later uses are plain attribute lookups
    return value


def __dir__():
    return sorted({*globals(), *__all__})
