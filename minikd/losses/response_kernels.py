r"""The formulas of the response losses, on checked arguments: per-position pieces and kernels.

Each per-position piece returns the loss of every position ``(...,)`` and its gradient with respect
to that position's logits ``(..., C)``; each kernel reduces them with
:func:`minikd.losses.reduction.reduce_positions`. Nothing here validates: the public functions of
:mod:`minikd.losses.response` check their arguments, then call these; the training loop and the
distiller call them per batch on data they checked once.
"""

from __future__ import annotations

import numpy as np

from .reduction import reduce_positions
from .softmax import log_softmax_kernel

__all__ = [
    "cross_entropy_kernel",
    "cross_entropy_per_position",
    "distillation_loss_kernel",
    "kd_loss_kernel",
    "kl_divergence_kernel",
    "kl_per_position",
    "soft_cross_entropy_kernel",
]


# ---------------------------------------------------------------- per-position pieces
# Each returns the loss of every position (...,) and its gradient with respect to that
# position's logits (..., C). They trust their callers: the arrays are checked float arrays.

def cross_entropy_per_position(logits, labels):
    """-log p_y and its gradient p - e_y, with p = softmax(z); labels (...,) int64 in [0, C)."""
    log_p = log_softmax_kernel(logits)  # (..., C)
    nll = -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]  # (...,)
    one_hot = np.arange(logits.shape[-1]) == labels[..., None]  # (..., C) e_y
    return nll, np.exp(log_p) - one_hot


def kl_per_position(student_logits, teacher_logits, temperature):
    """KL(p_t || p_s) of the soft targets p = softmax(z / T) and its gradient (p_s - p_t) / T.

    The kernel of :func:`kl_divergence`, :func:`kd_loss`, :func:`distillation_loss` and the
    token-level :func:`minikd.forward_kl`. ``0 log 0 = 0``: where p_t underflows to 0 its
    log-probability is still finite, so the product is 0.
    """
    T = temperature
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., C)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., C)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    kl = (p_t * (log_p_t - log_p_s)).sum(axis=-1)  # (...,)
    return kl, (p_s - p_t) / T  # d kl / d z_s, (..., C)


# ---------------------------------------------------------------- kernels (no checks)

def cross_entropy_kernel(logits, labels, *, mask=None, reduction="batchmean"):
    """:func:`cross_entropy` on checked arguments (labels in [0, C), mask without ignored)."""
    nll, dnll = cross_entropy_per_position(logits, labels)  # (...,), (..., C)
    return reduce_positions(nll, dnll, mask, reduction)


def soft_cross_entropy_kernel(student_logits, teacher_logits, *, temperature, mask=None,
                              reduction="batchmean"):
    """:func:`soft_cross_entropy` on checked arguments."""
    T = temperature
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., C)
    p_t = np.exp(log_softmax_kernel(teacher_logits / T))  # (..., C)
    ce = -(p_t * log_p_s).sum(axis=-1)  # (...,)
    return reduce_positions(ce, (np.exp(log_p_s) - p_t) / T, mask, reduction)


def kl_divergence_kernel(student_logits, teacher_logits, *, temperature, mask=None,
                         reduction="batchmean"):
    """:func:`kl_divergence` on checked arguments."""
    kl, dkl = kl_per_position(student_logits, teacher_logits, temperature)
    return reduce_positions(kl, dkl, mask, reduction)


def kd_loss_kernel(student_logits, teacher_logits, *, temperature, mask=None,
                   reduction="batchmean"):
    """:func:`kd_loss` on checked arguments: T² times the KL, gradient T (p_s - p_t)."""
    T = temperature
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (...,), (..., C)
    return reduce_positions(T**2 * kl, T**2 * dkl, mask, reduction)  # Hinton et al. §2


def distillation_loss_kernel(student_logits, teacher_logits, labels, *, temperature, alpha,
                             mask=None, reduction="batchmean"):
    """:func:`distillation_loss` on checked arguments; ``labels`` None only when alpha == 1."""
    T = temperature
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # soft term, at T
    loss, grad = alpha * T**2 * kl, alpha * T**2 * dkl  # (...,), (..., C)
    if labels is not None:
        ce, dce = cross_entropy_per_position(student_logits, labels)  # hard term, at T = 1
        loss, grad = loss + (1 - alpha) * ce, grad + (1 - alpha) * dce
    return reduce_positions(loss, grad, mask, reduction)
