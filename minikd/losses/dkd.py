r"""Decoupled knowledge distillation (DKD): target-class plus non-target-class KD.

Zhao et al. (2022) split Hinton's KD into TCKD, a KL divergence between the binary target /
non-target distributions, and NCKD, a KL divergence between the distributions over the
non-target classes, and weight them separately (``alpha``, ``beta``). The boundary checks and
the reductions are those of :mod:`minikd.losses.response` (see its docstring for ``mask``,
``ignore_index`` and ``reduction``). See ``docs/derivations/dkd.md``.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    check_choice,
    check_labels,
    check_nonnegative,
    check_pair,
    check_temperature,
    param_error,
)
from .reduction import reduce_positions
from .response import REDUCTIONS
from .response_kernels import kl_per_position
from .softmax import log_softmax_kernel, softmax_kernel

__all__ = ["dkd_loss"]

DKD_MASK = 1000.0  # mdistiller's non-target mask constant, subtracted AFTER dividing by T


def dkd_loss(student_logits, teacher_logits, labels, *, alpha=1.0, beta=8.0, temperature=4.0,
             mask=None, ignore_index=-100, reduction="batchmean"):
    r"""Decoupled KD: target-class KD plus non-target-class KD, as mdistiller defines it.

    .. math::

        L = \frac{T^2}{N} \sum_n \Big[\alpha\, \mathrm{KL}(b_{t,n} \| b_{s,n})
            + \beta\, \mathrm{KL}(q_{t,n} \| q_{s,n})\Big], \qquad
        \frac{\partial L}{\partial z_{s,nc}} = \frac{T}{N} \Big[\alpha\, g_{nc}
            + \beta (q_{s,nc} - q_{t,nc})\Big]

    with :math:`u = z/T`, :math:`p = \mathrm{softmax}(u)`, the binary target/non-target
    distribution :math:`b = (p_y, 1 - p_y)`, the masked non-target distribution
    :math:`q = \mathrm{softmax}(u - 1000\, e_y)` (the 1000 is *not* divided by T), and the TCKD
    gradient with respect to u, :math:`g_{ny} = b_{s,1} - b_{t,1}` and
    :math:`g_{nc} = \hat p_{s,c} (b_{s,2} - b_{t,2})` for :math:`c \ne y`, where
    :math:`\hat p = p / (1 - p_y)` is the renormalised non-target distribution.

    mdistiller takes ``torch.log`` of :math:`b_s`, which is -inf once :math:`p_y` rounds to 1;
    minikd computes :math:`\log b_{s,1} = u_y - \mathrm{LSE}(u)` and
    :math:`\log b_{s,2} = \mathrm{LSE}_{c \ne y}(u_c) - \mathrm{LSE}(u)`, finite for every finite
    input, and equal to mdistiller's wherever that is finite. With C = 2 the non-target
    distribution has one class, so NCKD is 0 (up to :math:`e^{-1000}`) and
    ``dkd_loss = alpha * kd_loss``. Identity (per position, :math:`T^2`-scaled):
    :math:`T^2\,\mathrm{KL}(p_t\|p_s) = \mathrm{TCKD} + (1 - p_{t,y})\,\mathrm{NCKD}`;
    mdistiller's NCKD does not carry the :math:`(1 - p_{t,y})` weight.

    Parameters
    ----------
    student_logits : array_like of shape (N, C) or (..., C)
        C >= 2.
    teacher_logits : array_like of shape (N, C) or (..., C)
        Same shape; a constant (no gradient).
    labels : array_like of int of shape (N,) or (...,)
        Target classes in [0, C), or ``ignore_index`` to skip a position.
    alpha : float >= 0, default 1.0
        Weight of TCKD.
    beta : float >= 0, default 8.0
        Weight of NCKD (mdistiller's CIFAR-100 default).
    temperature : float, default 4.0
        T in [1e-6, 1e6] (wider values overflow in float arithmetic).
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions that count (default all); the others add nothing and get zero gradient.
    ignore_index : int or None, default -100
        Label value that marks a position to skip (PyTorch's and Hugging Face's -100).
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Over the M counted positions: sum / M ("batchmean"), sum, or sum / (M·C) ("mean").

    Returns
    -------
    LossGrad
        ``loss`` (float, >= 0) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz_s).

    References
    ----------
    Zhao, Cui, Song, Qiu & Liang (2022), "Decoupled Knowledge Distillation", CVPR, §3.1 eq. 1-4;
    mdistiller ``mdistiller/distillers/DKD.py`` (``dkd_loss``; its warm-up and CE term are left
    to the caller).

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> round(dkd_loss(z_s, z_t, [2, 0]).loss, 6)
    3.531381
    """
    func = "dkd_loss"
    alpha = check_nonnegative(alpha, "alpha", func)
    beta = check_nonnegative(beta, "beta", func)
    T = check_temperature(temperature, func)
    z_s, z_t = check_pair(student_logits, teacher_logits, func, temperature=T)
    check_choice(reduction, "reduction", func, REDUCTIONS)
    if z_s.shape[-1] < 2:
        raise param_error("student_logits", func, "logits with at least 2 classes (DKD splits "
                          "target from non-target)", f"shape {z_s.shape}")
    y, mask = check_labels(labels, z_s.shape[:-1], z_s.shape[-1], func,
                           ignore_index=ignore_index, mask=mask)
    return dkd_loss_kernel(z_s, z_t, y, alpha=alpha, beta=beta, temperature=T, mask=mask,
                           reduction=reduction)


def dkd_loss_kernel(student_logits, teacher_logits, labels, *, alpha, beta, temperature,
                    mask=None, reduction="batchmean"):
    """:func:`dkd_loss` on checked arguments (labels in [0, C), C >= 2)."""
    T = temperature
    target = np.arange(student_logits.shape[-1]) == labels[..., None]  # (..., C) one-hot e_y
    u_s, u_t = student_logits / T, teacher_logits / T  # (..., C)
    # TCKD: KL between the binary target / non-target distributions b = (p_y, 1 - p_y)
    log_b_s, p_hat_s = target_split(u_s, target)  # (..., 2), (..., C)
    log_b_t, _ = target_split(u_t, target)
    b_s, b_t = np.exp(log_b_s), np.exp(log_b_t)
    tckd = (b_t * (log_b_t - log_b_s)).sum(axis=-1)  # (...,)
    db = b_s - b_t  # (..., 2)
    d_tckd = np.where(target, db[..., :1], p_hat_s * db[..., 1:])  # d TCKD / d u_s, (..., C)
    # NCKD: KL between mdistiller's masked softmaxes q = softmax(u - 1000 e_y), at T = 1 on u
    masked_s = np.where(target, u_s - DKD_MASK, u_s)  # (..., C)
    masked_t = np.where(target, u_t - DKD_MASK, u_t)
    nckd, d_nckd = kl_per_position(masked_s, masked_t, 1.0)
    loss = T**2 * (alpha * tckd + beta * nckd)  # (...,)
    grad = T * (alpha * d_tckd + beta * d_nckd)  # (..., C), chain rule through u = z / T
    return reduce_positions(loss, grad, mask, reduction)


def target_split(u, target):
    r"""The binary target / non-target split of softmax(u), stable for every finite u.

    Returns ``log_b`` (..., 2), the log of :math:`b = (p_y, 1 - p_y)`, and
    :math:`\hat p = \mathrm{softmax}` over the non-target classes (..., C), 0 at the target.
    :math:`b` is the softmax of two logits, the target's :math:`u_y` and the non-target
    normaliser :math:`\mathrm{LSE}_{c \ne y}(u_c) = \log\sum_{c \ne y} e^{u_c}`, so
    :math:`\log(1 - p_y)` stays finite where :math:`p_y` rounds to 1.
    """
    u_nt = np.where(target, -np.inf, u)  # (..., C), the target removed
    m_nt = u_nt.max(axis=-1)  # (...,), finite: C >= 2
    lse_nt = m_nt + np.log(np.exp(u_nt - m_nt[..., None]).sum(axis=-1))  # (...,)
    u_y = u[target].reshape(lse_nt.shape)  # (...,), one target per position
    log_b = log_softmax_kernel(np.stack([u_y, lse_nt], axis=-1))  # (..., 2)
    return log_b, softmax_kernel(u_nt)
