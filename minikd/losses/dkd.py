r"""Decoupled knowledge distillation (DKD): target-class plus non-target-class KD.

Zhao et al. (2022) split Hinton's KD into TCKD, a KL divergence between the binary target /
non-target distributions, and NCKD, a KL divergence between the distributions over the
non-target classes, and weight them separately (``alpha``, ``beta``). The boundary checks and
the reductions are those of :mod:`minikd.losses` (see its docstring for ``mask``,
``ignore_index`` and ``reduction``). See ``docs/derivations/dkd.md``.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_nonnegative, check_temperature, param_error
from .reduction import reduce_positions, resolve_mask
from .response import _REDUCTIONS, _flat_index, _labels, _pair
from .softmax import _row_max, _row_sum, _rows, _softmax_and_log

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
    ignore_index : int or None, default -100
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"

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
    a = check_nonnegative(alpha, "alpha", func)
    b = check_nonnegative(beta, "beta", func)
    T = check_temperature(temperature, func)
    z, shape = _pair(student_logits, teacher_logits, func, T)  # (2, C, M)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    C = shape[-1]
    if C < 2:
        raise param_error("student_logits", func, "logits with at least 2 classes (DKD splits "
                          "target from non-target)", f"shape {shape}")
    y, y_safe, y_ignored = _labels(labels, shape[:-1], C, func, ignore_index)
    selected = resolve_mask(mask, shape[:-1], func, labels=y_ignored,
                            ignore_index=ignore_index)
    z_s, z_t = _rows(z[0], shape), _rows(z[1], shape)  # (..., C) each, one dtype
    onehot = np.arange(C) == y_safe[..., None]  # (..., C) bool
    idx = _flat_index(y_safe, C)  # (M,)
    log_b1_s, log_b2_s, phat_s, log_q_s, q_s = _dkd_side(z_s / T, onehot, idx)
    log_b1_t, log_b2_t, _, log_q_t, q_t = _dkd_side(z_t / T, onehot, idx)
    b1_s, b2_s, b1_t, b2_t = (np.exp(v) for v in (log_b1_s, log_b2_s, log_b1_t, log_b2_t))
    tckd = b1_t * (log_b1_t - log_b1_s) + b2_t * (log_b2_t - log_b2_s)  # (...,)
    nckd = _row_sum(q_t * (log_q_t - log_q_s))  # (...,)
    # d TCKD / du: b_s1 - b_t1 at the target, p_hat_s (b_s2 - b_t2) elsewhere
    d_tckd = np.where(onehot, (b1_s - b1_t)[..., None], phat_s * (b2_s - b2_t)[..., None])
    rows = (a * T * T) * tckd + (b * T * T) * nckd  # (...,)
    grad = (a * T) * d_tckd + (b * T) * (q_s - q_t)  # (..., C)
    return reduce_positions(rows, grad, selected, reduction, func)


def _dkd_side(u, onehot, idx):
    """Stable pieces of DKD for one network, from u = z / T of shape (..., C).

    Returns (log b_1, log b_2, p_hat, log q, q): the log of the binary target /
    non-target probabilities (...,), the renormalised non-target softmax (..., C) (0 at the
    target), and mdistiller's masked softmax q = softmax(u - 1000 e_y) with its log (..., C).
    """
    m = _row_max(u)  # (..., 1)
    lse = m[..., 0] + np.log(_row_sum(np.exp(u - m)))  # (...,)
    u_nt = np.where(onehot, -np.inf, u)  # (..., C), target removed
    m_nt = _row_max(u_nt)  # finite: C >= 2
    e_nt = np.exp(u_nt - m_nt)  # (..., C), 0 at the target
    s_nt = _row_sum(e_nt)  # (...,) in [1, C-1]
    lse_nt = m_nt[..., 0] + np.log(s_nt)
    log_b1 = u.reshape(-1)[idx].reshape(lse.shape) - lse
    log_b2 = lse_nt - lse
    phat = e_nt / s_nt[..., None]
    q, log_q = _softmax_and_log(u - u.dtype.type(DKD_MASK) * onehot)
    return log_b1, log_b2, phat, log_q, q
