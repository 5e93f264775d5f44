r"""Response-based distillation losses: each returns its value and closed-form gradient.

All of them take logits of shape ``(..., C)``: a batch ``(N, C)``, or token sequences ``(N, L, V)``
where every leading index is one *position*. A per-position loss :math:`\ell_m` is reduced by
:func:`minikd.losses.reduction.reduce_positions`:

* ``reduction="batchmean"`` (default): :math:`\frac{1}{M}\sum_m \ell_m` over the M selected
  positions (PyTorch's ``KLDivLoss(reduction="batchmean")`` on 2-D input, and
  ``F.cross_entropy``'s ``"mean"``);
* ``"sum"``: :math:`\sum_m \ell_m`;
* ``"mean"``: :math:`\frac{1}{M C}\sum_m \ell_m` (``nn.KLDivLoss()``'s default).

Positions are selected by ``mask`` (bool over the leading axes) and, for label-taking losses, by
``labels != ignore_index`` (Hugging Face's ``-100``). Unselected positions get exactly zero
gradient and do not affect the value; a fully masked batch gives ``LossGrad(0.0, zeros)``.
The KL direction is always :math:`\mathrm{KL}(p_t \,\|\, p_s)`, teacher first. See
``docs/conventions.md`` and ``docs/derivations/``.

Each function here checks its arguments, then calls its kernel in
:mod:`minikd.losses.response_kernels`, where the formulas are.
"""

from __future__ import annotations

from .._validation import (
    as_float_array,
    check_choice,
    check_labels,
    check_logit_range,
    check_mask,
    check_pair,
    check_temperature,
    check_unit_interval,
    param_error,
)
from .response_kernels import (
    cross_entropy_kernel,
    distillation_loss_kernel,
    kd_loss_kernel,
    kl_divergence_kernel,
    soft_cross_entropy_kernel,
)

__all__ = [
    "cross_entropy",
    "distillation_loss",
    "kd_loss",
    "kl_divergence",
    "soft_cross_entropy",
]

REDUCTIONS = ("batchmean", "sum", "mean")  # "sequence_mean" is for the token losses


# ---------------------------------------------------------------- public losses: check, then kernel

def _soft_target_args(student_logits, teacher_logits, temperature, mask, reduction, func):
    """The checked (z_s, z_t, T, mask) of a loss between soft targets."""
    T = check_temperature(temperature, func)
    z_s, z_t = check_pair(student_logits, teacher_logits, func, temperature=T)
    check_choice(reduction, "reduction", func, REDUCTIONS)
    return z_s, z_t, T, check_mask(mask, z_s.shape[:-1], func)


def cross_entropy(logits, labels, *, mask=None, ignore_index=-100, reduction="batchmean"):
    r"""Cross-entropy of the softmax of ``logits`` against integer labels (the hard loss).

    .. math::

        L = \frac{1}{N} \sum_n -\log p_{n, y_n}, \quad p_n = \mathrm{softmax}(z_n), \qquad
        \frac{\partial L}{\partial z_{n c}} = \frac{1}{N} (p_{n c} - [c = y_n])

    Parameters
    ----------
    logits : array_like of shape (N, C) or (..., C)
        Student logits z.
    labels : array_like of int of shape (N,) or (...,)
        Class indices in [0, C), or ``ignore_index`` to skip a position.
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions to include (default all).
    ignore_index : int or None, default -100
        Label value that marks a position to skip (Hugging Face / PyTorch convention).
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Mean over selected positions, sum, or mean over selected elements (divides by M·C;
        PyTorch's ``F.cross_entropy(reduction="mean")`` is minikd's ``"batchmean"``).

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz).

    References
    ----------
    The hard-target term of Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a
    Neural Network", §2.

    Examples
    --------
    >>> loss, grad = cross_entropy([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], [2, 0])
    >>> round(loss, 6)
    1.074459
    >>> grad.sum(axis=1).round(12) + 0.0
    array([0., 0.])
    """
    func = "cross_entropy"
    z = as_float_array(logits, "logits", func, min_ndim=2)
    check_logit_range(z, 1.0, "logits", func)
    check_choice(reduction, "reduction", func, REDUCTIONS)
    y, selected = check_labels(labels, z.shape[:-1], z.shape[-1], func,
                               ignore_index=ignore_index, mask=mask)
    return cross_entropy_kernel(z, y, mask=selected, reduction=reduction)


def soft_cross_entropy(student_logits, teacher_logits, *, temperature=1.0, mask=None,
                       reduction="batchmean"):
    r"""Cross-entropy of the student's soft targets against the teacher's (TextBrewer's KD loss).

    .. math::

        L = \frac{1}{N} \sum_n -\sum_c p^T_{t,nc} \log p^T_{s,nc}, \quad
        p^T = \mathrm{softmax}(z / T), \qquad
        \frac{\partial L}{\partial z_{s,nc}} = \frac{1}{N T} (p^T_{s,nc} - p^T_{t,nc})

    It equals :func:`kl_divergence` plus the teacher entropy :math:`H(p^T_t)`, a constant for
    the student, so the two have the same gradient. No :math:`T^2` factor.

    Parameters
    ----------
    student_logits : array_like of shape (N, C) or (..., C)
    teacher_logits : array_like of shape (N, C) or (..., C)
        Same shape; a constant (no gradient).
    temperature : float, default 1.0
        T in [1e-6, 1e6] (wider values overflow in float arithmetic).
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions that count (default all); the others add nothing and get zero gradient.
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Over the M counted positions: sum / M ("batchmean"), sum, or sum / (M·C) ("mean").

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz_s).

    References
    ----------
    TextBrewer ``losses.kd_ce_loss`` (Yang et al. 2020); Hinton et al. (2015) §2.

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> round(soft_cross_entropy(z_s, z_t, temperature=4.0).loss, 6)
    1.129946
    """
    z_s, z_t, T, mask = _soft_target_args(student_logits, teacher_logits, temperature, mask,
                                          reduction, "soft_cross_entropy")
    return soft_cross_entropy_kernel(z_s, z_t, temperature=T, mask=mask, reduction=reduction)


def kl_divergence(student_logits, teacher_logits, *, temperature=1.0, mask=None,
                  reduction="batchmean"):
    r"""KL divergence from the student's soft targets to the teacher's, without the T² factor.

    .. math::

        L = \frac{1}{N} \sum_n \sum_c p^T_{t,nc} \left(\log p^T_{t,nc} - \log p^T_{s,nc}\right),
        \qquad \frac{\partial L}{\partial z_{s,nc}} = \frac{1}{N T} (p^T_{s,nc} - p^T_{t,nc})

    with :math:`p^T = \mathrm{softmax}(z/T)` and :math:`0 \log 0 = 0`. This is PyTorch's
    ``F.kl_div(F.log_softmax(z_s / T, -1), F.softmax(z_t / T, -1), reduction="batchmean")``.

    Parameters
    ----------
    student_logits : array_like of shape (N, C) or (..., C)
    teacher_logits : array_like of shape (N, C) or (..., C)
        Same shape; a constant (no gradient).
    temperature : float, default 1.0
        T in [1e-6, 1e6] (wider values overflow in float arithmetic).
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions that count (default all); the others add nothing and get zero gradient.
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Over the M counted positions: sum / M ("batchmean"), sum, or sum / (M·C) ("mean").

    Returns
    -------
    LossGrad
        ``loss`` (float, >= 0) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz_s).

    References
    ----------
    Hinton, Vinyals & Dean (2015), §2 (soft targets at temperature T).

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> round(kl_divergence(z_s, z_t, temperature=4.0).loss, 8)
    0.04737497
    """
    z_s, z_t, T, mask = _soft_target_args(student_logits, teacher_logits, temperature, mask,
                                          reduction, "kl_divergence")
    return kl_divergence_kernel(z_s, z_t, temperature=T, mask=mask, reduction=reduction)


def kd_loss(student_logits, teacher_logits, *, temperature=4.0, mask=None, reduction="batchmean"):
    r"""Hinton's soft-target loss: :math:`T^2` times the KL divergence of the soft targets.

    .. math::

        L = \frac{T^2}{N} \sum_n \mathrm{KL}\!\left(p^T_{t,n} \,\|\, p^T_{s,n}\right), \qquad
        \frac{\partial L}{\partial z_{s,nc}} = \frac{T}{N} (p^T_{s,nc} - p^T_{t,nc})

    The :math:`T^2` keeps the gradient's magnitude roughly independent of T (Hinton et al. §2);
    at high T the gradient tends to :math:`(\bar z_{s,nc} - \bar z_{t,nc}) / (N C)` for
    row-centred logits :math:`\bar z` (eq. 4, logit matching). This is the KD term of
    RepDistiller ``DistillKL``, mdistiller ``kd_loss`` and HF DistilBERT.

    Parameters
    ----------
    student_logits : array_like of shape (N, C) or (..., C)
    teacher_logits : array_like of shape (N, C) or (..., C)
        Same shape; a constant (no gradient).
    temperature : float, default 4.0
        T in [1e-6, 1e6] (wider values overflow in float arithmetic).
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions that count (default all); the others add nothing and get zero gradient.
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Over the M counted positions: sum / M ("batchmean"), sum, or sum / (M·C) ("mean").

    Returns
    -------
    LossGrad
        ``loss`` (float, >= 0) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz_s).

    References
    ----------
    Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", §2, eqs. 2, 4.

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> loss, grad = kd_loss(z_s, z_t, temperature=4.0)
    >>> round(loss, 8)
    0.75799947
    >>> grad[1].round(6)
    array([-0.050345, -0.097454,  0.147799])
    """
    z_s, z_t, T, mask = _soft_target_args(student_logits, teacher_logits, temperature, mask,
                                          reduction, "kd_loss")
    return kd_loss_kernel(z_s, z_t, temperature=T, mask=mask, reduction=reduction)


def distillation_loss(student_logits, teacher_logits, labels, *, temperature=4.0, alpha=0.9,
                      mask=None, ignore_index=-100, reduction="batchmean"):
    r"""The KD blend: ``alpha`` times :func:`kd_loss` plus ``1 - alpha`` times cross-entropy.

    .. math::

        L = \frac{1}{N} \sum_n \Big[\alpha\, T^2\, \mathrm{KL}(p^T_{t,n} \| p^T_{s,n})
            - (1 - \alpha) \log p_{s, n y_n}\Big], \qquad
        \frac{\partial L}{\partial z_{s,nc}} = \frac{1}{N}\Big[\alpha\, T (p^T_{s,nc} - p^T_{t,nc})
            + (1 - \alpha)(p_{s,nc} - [c = y_n])\Big]

    The hard term is at T = 1. ``alpha`` is the weight of the soft term: ``alpha = 1`` is soft
    targets only (then ``labels`` may be None), ``alpha = 0`` is plain cross-entropy.

    Parameters
    ----------
    student_logits : array_like of shape (N, C) or (..., C)
    teacher_logits : array_like of shape (N, C) or (..., C)
        Same shape; a constant (no gradient).
    labels : array_like of int of shape (N,) or (...,), or None
        Class indices in [0, C) or ``ignore_index``; None only when ``alpha == 1``. A position
        whose label is ``ignore_index`` is skipped in both terms.
    temperature : float, default 4.0
        T in [1e-6, 1e6], for the soft term.
    alpha : float in [0, 1], default 0.9
        Weight of the soft term.
    mask : array_like of bool of shape (N,) or (...,), optional
        Positions that count (default all); the others add nothing and get zero gradient.
    ignore_index : int or None, default -100
        Label value that marks a position to skip (PyTorch's and Hugging Face's -100).
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"
        Over the M counted positions: sum / M ("batchmean"), sum, or sum / (M·C) ("mean").

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (N, C) or (..., C), dL/dz_s).

    References
    ----------
    Hinton, Vinyals & Dean (2015), §2 ("a weighted average of two different objective
    functions"); the ``alpha * KD + (1 - alpha) * CE`` form of attention-transfer ``utils.py``.

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> round(distillation_loss(z_s, z_t, [2, 0], temperature=4.0, alpha=0.9).loss, 6)
    0.789645
    """
    func = "distillation_loss"
    alpha = check_unit_interval(alpha, "alpha", func)
    z_s, z_t, T, mask = _soft_target_args(student_logits, teacher_logits, temperature, mask,
                                          reduction, func)
    if labels is None:
        if alpha != 1.0:
            raise param_error("labels", func, "an integer array of class indices (labels may be "
                              "None only when alpha == 1)", f"None with alpha={alpha!r}")
    else:
        labels, mask = check_labels(labels, z_s.shape[:-1], z_s.shape[-1], func,
                                    ignore_index=ignore_index, mask=mask)
    return distillation_loss_kernel(z_s, z_t, labels, temperature=T, alpha=alpha, mask=mask,
                                    reduction=reduction)
