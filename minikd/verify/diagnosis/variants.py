r"""The KD losses public code computes by mistake, each with its value and closed-form gradient.

Every function here is one *soft term* :math:`S` of the KD loss, written the way a known bug or a
library convention writes it, with the same signature as minikd's kernels: ``(student_logits,
teacher_logits, *, temperature)`` on checked float64 arrays of shape (N, C), returning a
:class:`minikd.LossGrad` ``(S, dS/dz_s)``. :func:`with_hard_term` adds the hard cross-entropy of the
blend. The catalog in :mod:`minikd.verify.diagnosis.catalog` names them; :func:`minikd.diagnose`
compares a user's number with each.

Notation: :math:`p^T = \mathrm{softmax}(z / T)` row by row, :math:`N` rows, :math:`C` classes,
:math:`\mathrm{KL}_n = \sum_c p^T_{t,nc} (\log p^T_{t,nc} - \log p^T_{s,nc})`. The correct term is
:math:`S = \frac{T^2}{N}\sum_n \mathrm{KL}_n` with gradient :math:`\frac{T}{N}(p^T_s - p^T_t)`
(Hinton, Vinyals & Dean 2015, §2, eq. 2); each variant below says what it changes.
"""

from __future__ import annotations

import numpy as np

from ...losses.reduction import LossGrad
from ...losses.response_kernels import cross_entropy_per_position, kl_per_position
from ...losses.softmax import log_softmax_kernel

__all__ = [
    "soft_ce_not_kl",
    "soft_correct",
    "soft_missing_t2",
    "soft_numel_norm",
    "soft_probs_as_input",
    "soft_reduction_mean",
    "soft_reduction_sum",
    "soft_reversed_kl",
    "soft_student_t1",
    "soft_t_not_t2",
    "soft_teacher_t1",
    "soft_teacher_vs_teacher",
    "with_hard_term",
]


def with_hard_term(soft, student_logits, labels, soft_weight):
    r"""The blend :math:`w S + (1 - w)\,\mathrm{CE}` of a soft term and the hard cross-entropy.

    .. math::

        L = w\, S + \frac{1 - w}{N} \sum_n -\log p_{s, n y_n}, \qquad
        \frac{\partial L}{\partial z_s} = w \frac{\partial S}{\partial z_s}
            + \frac{1 - w}{N} (p_s - e_{y}),

    with :math:`p_s = \mathrm{softmax}(z_s)` at T = 1. ``soft_weight`` None returns ``soft``
    unchanged (a loss made of the soft term alone).
    """
    if soft_weight is None:
        return soft
    w, N = soft_weight, student_logits.shape[0]
    nll, dnll = cross_entropy_per_position(student_logits, labels)  # (N,), (N, C)
    return LossGrad(w * soft.loss + (1 - w) * nll.sum() / N, w * soft.grad + (1 - w) * dnll / N)


def soft_correct(student_logits, teacher_logits, *, temperature):
    r"""T² times the batch mean of the KL (minikd's :func:`minikd.kd_loss`).

    .. math::

        S = \frac{T^2}{N} \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{N} (p^T_s - p^T_t)
    """
    T, N = temperature, student_logits.shape[0]
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(T**2 * kl.sum() / N, T**2 * dkl / N)


def soft_reduction_mean(student_logits, teacher_logits, *, temperature):
    r"""``reduction='mean'``: the KL divided by N·C, C times too small.

    .. math::

        S = \frac{T^2}{N C} \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{N C} (p^T_s - p^T_t)
    """
    T, (N, C) = temperature, student_logits.shape
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(T**2 * kl.sum() / (N * C), T**2 * dkl / (N * C))


def soft_reduction_sum(student_logits, teacher_logits, *, temperature):
    r"""``reduction='sum'`` with no division by the batch: N times too large.

    .. math::

        S = T^2 \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = T (p^T_s - p^T_t)
    """
    T = temperature
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(T**2 * kl.sum(), T**2 * dkl)


def soft_numel_norm(student_logits, teacher_logits, *, temperature):
    r"""The summed KL divided by ``numel()`` = N·C instead of N (the same number as ``'mean'``).

    .. math::

        S = \frac{T^2}{\mathrm{numel}(z_s)} \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{\mathrm{numel}(z_s)} (p^T_s - p^T_t)
    """
    T, numel = temperature, student_logits.size
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(T**2 * kl.sum() / numel, T**2 * dkl / numel)


def soft_missing_t2(student_logits, teacher_logits, *, temperature):
    r"""No T² factor: the bare batchmean KL, T² times too small, and so is its gradient.

    .. math::

        S = \frac{1}{N} \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = \frac{1}{N T} (p^T_s - p^T_t)
    """
    T, N = temperature, student_logits.shape[0]
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(kl.sum() / N, dkl / N)


def soft_t_not_t2(student_logits, teacher_logits, *, temperature):
    r"""T instead of T²: T times too small.

    .. math::

        S = \frac{T}{N} \sum_n \mathrm{KL}_n, \qquad
        \frac{\partial S}{\partial z_s} = \frac{1}{N} (p^T_s - p^T_t)
    """
    T, N = temperature, student_logits.shape[0]
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (N,), (N, C)
    return LossGrad(T * kl.sum() / N, T * dkl / N)


def soft_probs_as_input(student_logits, teacher_logits, *, temperature):
    r"""``F.kl_div`` given the student's probabilities where it expects log-probabilities.

    ``F.kl_div(input, target)`` computes :math:`\sum p_t (\log p_t - \mathrm{input})`; with
    ``input`` :math:`= p^T_s` that is not a divergence: each row is
    :math:`-H(p^T_t) - \langle p^T_t, p^T_s \rangle < 0`, so the value is always negative.

    .. math::

        S = \frac{T^2}{N} \sum_{n,c} p^T_{t,nc} (\log p^T_{t,nc} - p^T_{s,nc}), \qquad
        \frac{\partial S}{\partial z_s} = -\frac{T}{N}\, p^T_s \odot
            \big(p^T_t - \langle p^T_t, p^T_s \rangle\big)

    with :math:`\langle p_t, p_s \rangle_n = \sum_c p_{t,nc} p_{s,nc}` per row (the softmax
    Jacobian :math:`\partial p_c / \partial z_j = p_c (\delta_{cj} - p_j) / T` applied to
    :math:`-T^2 p_t / N`).
    """
    T, N = temperature, student_logits.shape[0]
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (N, C)
    p_t = np.exp(log_p_t)  # (N, C)
    p_s = np.exp(log_softmax_kernel(student_logits / T))  # (N, C)
    pointwise = p_t * (log_p_t - p_s)  # (N, C)  F.kl_div(input=p_s, target=p_t), 0 log 0 = 0
    inner = (p_t * p_s).sum(axis=-1, keepdims=True)  # (N, 1)
    return LossGrad(T**2 * pointwise.sum() / N, -T * p_s * (p_t - inner) / N)


def soft_reversed_kl(student_logits, teacher_logits, *, temperature):
    r"""The reverse KL, :math:`\mathrm{KL}(p_s \| p_t)`: ``F.kl_div``'s arguments swapped.

    .. math::

        S = \frac{T^2}{N} \sum_n \sum_c p^T_{s,nc} d_{nc}, \quad
        d = \log p^T_s - \log p^T_t, \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{N}\, p^T_s \odot
            \Big(d - \sum_c p^T_{s,c} d_c\Big)
    """
    T, N = temperature, student_logits.shape[0]
    log_p_s = log_softmax_kernel(student_logits / T)  # (N, C)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (N, C)
    p_s = np.exp(log_p_s)  # (N, C)
    d = log_p_s - log_p_t  # (N, C)
    kl_rev = (p_s * d).sum(axis=-1, keepdims=True)  # (N, 1)  KL(p_s || p_t) per row
    return LossGrad(T**2 * kl_rev.sum() / N, T * p_s * (d - kl_rev) / N)


def soft_student_t1(student_logits, teacher_logits, *, temperature):
    r"""The student's softmax at T = 1 (its logits not divided by T), the teacher's at T.

    .. math::

        S = \frac{T^2}{N} \sum_n \mathrm{KL}(p^T_{t,n} \| p^1_{s,n}), \qquad
        \frac{\partial S}{\partial z_s} = \frac{T^2}{N} (p^1_s - p^T_t)
    """
    T, N = temperature, student_logits.shape[0]
    log_p_s = log_softmax_kernel(student_logits)  # (N, C), T = 1
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (N, C)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    kl = (p_t * (log_p_t - log_p_s)).sum(axis=-1)  # (N,)
    return LossGrad(T**2 * kl.sum() / N, T**2 * (p_s - p_t) / N)


def soft_teacher_t1(student_logits, teacher_logits, *, temperature):
    r"""The teacher's softmax at T = 1 (its logits not divided by T), the student's at T.

    .. math::

        S = \frac{T^2}{N} \sum_n \mathrm{KL}(p^1_{t,n} \| p^T_{s,n}), \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{N} (p^T_s - p^1_t)
    """
    T, N = temperature, student_logits.shape[0]
    log_p_s = log_softmax_kernel(student_logits / T)  # (N, C)
    log_p_t = log_softmax_kernel(teacher_logits)  # (N, C), T = 1
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    kl = (p_t * (log_p_t - log_p_s)).sum(axis=-1)  # (N,)
    return LossGrad(T**2 * kl.sum() / N, T * (p_s - p_t) / N)


def soft_ce_not_kl(student_logits, teacher_logits, *, temperature):
    r"""The soft cross-entropy in place of the KL: larger by :math:`T^2 H(p^T_t)`, same gradient.

    .. math::

        S = -\frac{T^2}{N} \sum_{n,c} p^T_{t,nc} \log p^T_{s,nc}
          = \frac{T^2}{N} \sum_n \big(\mathrm{KL}_n + H(p^T_{t,n})\big), \qquad
        \frac{\partial S}{\partial z_s} = \frac{T}{N} (p^T_s - p^T_t)
    """
    T, N = temperature, student_logits.shape[0]
    log_p_s = log_softmax_kernel(student_logits / T)  # (N, C)
    p_t = np.exp(log_softmax_kernel(teacher_logits / T))  # (N, C)
    ce = -(p_t * log_p_s).sum(axis=-1)  # (N,)
    return LossGrad(T**2 * ce.sum() / N, T * (np.exp(log_p_s) - p_t) / N)


def soft_teacher_vs_teacher(student_logits, teacher_logits, *, temperature):
    r"""The teacher compared with itself: zero, and no gradient reaches the student.

    .. math::

        S = \frac{T^2}{N} \sum_n \mathrm{KL}(p^T_{t,n} \| p^T_{t,n}) = 0, \qquad
        \frac{\partial S}{\partial z_s} = 0
    """
    T, N = temperature, student_logits.shape[0]
    kl, _ = kl_per_position(teacher_logits, teacher_logits, T)  # (N,), exactly 0: the bug
    return LossGrad(T**2 * kl.sum() / N, np.zeros_like(student_logits))
