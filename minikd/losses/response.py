r"""Response-based distillation losses: each returns its value and closed-form gradient.

All of them take logits of shape ``(..., C)``: a batch ``(N, C)``, or token sequences ``(N, L, V)``
where every leading index is one *position*. A per-position loss :math:`\ell_m` is reduced by
:func:`minikd._reduce.reduce_positions`:

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
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import (
    as_float_array,
    as_labels,
    check_choice,
    check_logit_range,
    check_same_shape,
    check_temperature,
    check_unit_interval,
    in_logit_range,
    param_error,
)
from .reduction import reduce_positions, resolve_mask
from .softmax import _columns, _rows, _softmax_columns

__all__ = [
    "cross_entropy",
    "distillation_loss",
    "kd_loss",
    "kl_divergence",
    "soft_cross_entropy",
]


# ---------------------------------------------------------------- boundary helpers (private)

def _logits(x, name, func, temperature=1.0):
    z = as_float_array(x, name, func, min_ndim=2, check_finite=False)
    check_logit_range(z, temperature, name, func)  # refuses NaN/inf too
    return z


def _pair(student_logits, teacher_logits, func, temperature, *, student_again=False):
    """Validated student and teacher logits side by side, class-major, and their shape.

    Returns ``z`` of shape (K, C, M): ``z[0]`` the student, ``z[1]`` the teacher and, with
    ``student_again``, ``z[2]`` the student once more (for a second temperature), each a
    (C, M) block over the M positions; and the logits' shape (..., C). One array, so that each
    softmax step runs once for all blocks (NumPy's per-call cost, not the arithmetic, dominates
    at (256, 10)). float32 only when both are float32.
    """
    s = as_float_array(student_logits, "student_logits", func, min_ndim=2, check_finite=False)
    t = as_float_array(teacher_logits, "teacher_logits", func, min_ndim=2, check_finite=False)
    check_same_shape(s, t, "student_logits", "teacher_logits", func)
    z = _columns(s, t, s) if student_again else _columns(s, t)  # (K, C, M)
    if not in_logit_range(z[:2], temperature):  # find the culprit for the message
        check_logit_range(s, temperature, "student_logits", func)
        check_logit_range(t, temperature, "teacher_logits", func)
        check_logit_range(z, temperature, "student_logits", func)  # float32 s, float64 t
    return z, s.shape


def _labels(labels, lead_shape, n_classes, func, ignore_index):
    """int64 labels of the leading shape, a copy safe to index with (ignored -> class 0), and
    the labels to pass to ``resolve_mask`` (None when no label is ignored)."""
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise param_error("ignore_index", func, "an int or None", repr(ignore_index), TypeError)
    y = as_labels(labels, lead_shape, n_classes, func, ignore_index=ignore_index)
    # a negative ignore_index can only be met by a negative label
    if ignore_index is None or (ignore_index < 0 and np.minimum.reduce(y, axis=None) >= 0):
        return y, y, None
    return y, np.where(y == ignore_index, 0, y), y


_REDUCTIONS = ("batchmean", "sum", "mean")  # _reduce's "sequence_mean" is for token losses


def _flat_index(y, C):
    """Indices of entries (m, y_m) in the flattened (M·C,) logits; y of shape (...,)."""
    return np.arange(0, y.size * C, C) + y.reshape(-1)  # (M,)


def _reduce(rows, grad, shape, selected, reduction, func, **scales):
    """:func:`reduce_positions` for class-major results: rows (M,) and grad (C, M) go back to
    the logits' layout, (...,) and ``shape`` (..., C)."""
    return reduce_positions(rows.reshape(shape[:-1]), _rows(grad, shape), selected, reduction,
                            func, **scales)


# ---------------------------------------------------------------- kernels (private, no checks)
# Class-major: a block is (C, M), classes on axis 0 (see softmax._columns).

def _label_positions(a, y):
    """Positions of the entries (y_m, m) of the (C, M) block ``a`` in ``a.ravel(order="K")``.

    The blocks of :func:`softmax._columns`, and the ufunc outputs computed from them, are C- or
    F-ordered, so that flat view exists; one flat index is several times cheaper than NumPy's
    two-array fancy indexing (2 against 6 us for a gather-and-update at (10, 256)).
    """
    step_class, step_position = (stride // a.itemsize for stride in a.strides)
    return y * step_class + np.arange(0, y.size * step_position, step_position)  # (M,)


def _ce_columns(p, shifted, log_norm, y):
    """Per-position cross-entropy -log p[y] (M,) and its gradient p - onehot(y) (C, M), from
    the softmax pieces of one block; ``p`` is overwritten. ``y`` is (M,)."""
    at_label = _label_positions(p, y)  # shifted has p's layout: p = exp(shifted)
    rows = log_norm - shifted.ravel(order="K")[at_label]  # -log p[y], (M,)
    p.ravel(order="K")[at_label] -= 1  # a view, p being contiguous
    return rows, p


def _kl_columns(p, shifted, log_norm):
    """Per-position KL(p_t || p_s) (M,) and d KL / d(z_s / T) = p_s - p_t (C, M).

    From the softmax pieces of a pair (:func:`_pair`): block 0 the student, block 1 the teacher.
    With log p = shifted - log_norm and sum_c p_t = 1, KL = sum_c p_t (shifted_t - shifted_s)
    + log_norm_s - log_norm_t, so no (C, M) log p arrays are formed.
    """
    d = shifted[1] - shifted[0]  # (C, M)
    d *= p[1]  # p_t (log p_t - log p_s) up to the norms: 0 where p_t underflows, never nan
    rows = np.add.reduce(d, axis=0)  # (M,)
    rows += log_norm[0] - log_norm[1]
    return rows, p[0] - p[1]


# ---------------------------------------------------------------- public losses

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
    z = _logits(logits, "logits", func)
    y, y_safe, y_ignored = _labels(labels, z.shape[:-1], z.shape[-1], func, ignore_index)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    selected = resolve_mask(mask, z.shape[:-1], func, labels=y_ignored, ignore_index=ignore_index)
    p, shifted, log_norm = _softmax_columns(_columns(z)[0])  # (C, M), (C, M), (M,)
    rows, grad = _ce_columns(p, shifted, log_norm, y_safe.reshape(-1))
    return _reduce(rows, grad, z.shape, selected, reduction, func)


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
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"

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
    func = "soft_cross_entropy"
    T = check_temperature(temperature, func)
    z, shape = _pair(student_logits, teacher_logits, func, T)  # (2, C, M)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    selected = resolve_mask(mask, shape[:-1], func)
    p, shifted, log_norm = _softmax_columns(z, T)  # (2, C, M), (2, C, M), (2, M)
    sh_s = shifted[0]
    sh_s *= p[1]
    rows = log_norm[0] - sh_s.sum(axis=0)  # -sum_c p_t log p_s, using sum_c p_t = 1; (M,)
    grad = p[0] - p[1]  # (C, M)
    return _reduce(rows, grad, shape, selected, reduction, func, grad_scale=1.0 / T)


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
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"

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
    func = "kl_divergence"
    T = check_temperature(temperature, func)
    z, shape = _pair(student_logits, teacher_logits, func, T)  # (2, C, M)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    selected = resolve_mask(mask, shape[:-1], func)
    rows, grad = _kl_columns(*_softmax_columns(z, T))  # (M,), (C, M)
    return _reduce(rows, grad, shape, selected, reduction, func, grad_scale=1.0 / T)


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
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"

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
    func = "kd_loss"
    T = check_temperature(temperature, func)
    z, shape = _pair(student_logits, teacher_logits, func, T)  # (2, C, M)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    selected = resolve_mask(mask, shape[:-1], func)
    rows, grad = _kl_columns(*_softmax_columns(z, T))  # (M,), (C, M)
    return _reduce(rows, grad, shape, selected, reduction, func, loss_scale=T * T, grad_scale=T)


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
    ignore_index : int or None, default -100
    reduction : {"batchmean", "sum", "mean"}, default "batchmean"

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
    T = check_temperature(temperature, func)
    a = check_unit_interval(alpha, "alpha", func)
    blend = labels is not None and a != 1.0  # else the soft term alone
    # the student twice when blending: block 2 is softened at T = 1 for the hard term
    z, shape = _pair(student_logits, teacher_logits, func, T, student_again=blend)  # (K, C, M)
    check_choice(reduction, "reduction", func, _REDUCTIONS)
    if labels is None:
        if a != 1.0:
            raise param_error("labels", func, "an integer array of class indices (labels may be "
                              "None only when alpha == 1)", f"None with alpha={a!r}")
        selected = resolve_mask(mask, shape[:-1], func)
    else:
        y, y_safe, y_ignored = _labels(labels, shape[:-1], shape[-1], func, ignore_index)
        selected = resolve_mask(mask, shape[:-1], func, labels=y_ignored,
                                ignore_index=ignore_index)
    if not blend:
        rows, grad = _kl_columns(*_softmax_columns(z, T))  # (M,), (C, M)
        return _reduce(rows, grad, shape, selected, reduction, func, loss_scale=a * T * T,
                       grad_scale=a * T)
    temperatures = np.array([[[T]], [[T]], [[1.0]]], z.dtype)  # (3, 1, 1): one per block of z
    p, shifted, log_norm = _softmax_columns(z, temperatures)  # (3, C, M), (3, C, M), (3, M)
    kl, grad = _kl_columns(p, shifted, log_norm)  # (M,), (C, M): KL and p^T_s - p^T_t
    ce, dce = _ce_columns(p[2], shifted[2], log_norm[2], y_safe.reshape(-1))  # at T = 1
    dt = grad.dtype.type
    grad *= dt(a * T)
    dce *= dt(1.0 - a)
    grad += dce  # a T (p^T_s - p^T_t) + (1 - a)(p_s - onehot(y))
    kl *= dt(a * T * T)
    ce *= dt(1.0 - a)
    kl += ce  # a T^2 KL + (1 - a) CE, (M,)
    return _reduce(kl, grad, shape, selected, reduction, func)
