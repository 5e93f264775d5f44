r"""Feature-based distillation: the student copies the teacher's inner features.

* :func:`hint_loss` — FitNets (Romero et al. 2015): mean squared error after a learned linear
  regressor (:func:`regressor_forward` / :func:`regressor_backward`, parameters from
  :func:`init_regressor`) that maps the student's width to the teacher's.
* :func:`cosine_loss` — DistilBERT's hidden-state loss: mean over rows of ``1 - cos``.
* :func:`attention_transfer_loss` — Zagoruyko & Komodakis 2017 on ``(N, C, H, W)`` maps.

Every loss returns :class:`minikd.LossGrad` with the gradient with respect to the **student**
input; the teacher input is a constant. Conventions follow RepDistiller and the authors' code
(``kd-anchors.md`` §1.3); the docstrings name the other variants.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    _as_real_scalar,
    as_float_array,
    check_feature_range,
    check_same_shape,
    common_float_dtype,
    param_error,
)
from ..nn.layers import linear_backward, linear_forward
from .normalize import l2_normalize, l2_normalize_vjp
from .reduction import LossGrad

__all__ = [
    "attention_transfer_loss",
    "cosine_loss",
    "hint_loss",
    "init_regressor",
    "regressor_backward",
    "regressor_forward",
]

COSINE_EPS = 1e-12  # ATen's EPSILON in cosine_embedding_loss, added to the squared norms
AT_MODES = ("code", "paper")


def _student_teacher(student, teacher, names, func, *, ndim=None, min_ndim=2):
    """Convert both inputs to one float dtype (float32 only if both are float32)."""
    s = as_float_array(student, names[0], func, ndim=ndim, min_ndim=min_ndim, check_finite=False)
    t = as_float_array(teacher, names[1], func, ndim=ndim, min_ndim=min_ndim, check_finite=False)
    dtype = common_float_dtype(s, t)
    s, t = s.astype(dtype, copy=False), t.astype(dtype, copy=False)
    check_feature_range(s, names[0], func)  # squares and sums of squares must not overflow
    check_feature_range(t, names[1], func)
    return s, t


# ---------------------------------------------------------------------------------------------
# FitNets


def hint_loss(student_features, teacher_features):
    r"""FitNets hint loss: mean squared error over all elements (``nn.MSELoss()``).

    .. math::

        L = \frac{1}{M} \sum_{m=1}^{M} (s_m - t_m)^2, \qquad
        \frac{\partial L}{\partial s_m} = \frac{2}{M} (s_m - t_m)

    where M is the number of elements (N·F for a batch of features). In FitNets ``s`` is the
    output of a learned regressor :math:`r(h_s) = h_s W + b` (:func:`regressor_forward`) applied
    to the student's hint layer, so that widths match. The paper writes ½‖·‖² per example
    (Romero et al. 2015, §2.2, eq. 3); RepDistiller and mdistiller use the element mean coded
    here, and weight it by 100.

    Parameters
    ----------
    student_features : array_like of shape (N, F) or (N, ...)
        The (regressed) student features.
    teacher_features : array_like, same shape as ``student_features``
        The teacher's features at the paired layer (a constant).

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` of shape (N, F): dL/d student_features.

    Examples
    --------
    >>> out = hint_loss([[1.0, 2.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 1.0]])
    >>> round(out.loss, 4), out.grad.tolist()
    (0.5, [[0.5, 0.0], [0.0, -0.5]])
    """
    func = "hint_loss"
    s, t = _student_teacher(student_features, teacher_features,
                            ("student_features", "teacher_features"), func)
    check_same_shape(s, t, "student_features", "teacher_features", func)
    diff = s - t  # (N, F)
    m = diff.size
    loss = float(np.vdot(diff, diff) / m)
    return LossGrad(loss, diff * diff.dtype.type(2.0 / m))


def init_regressor(in_features, out_features, *, rng=None, dtype=np.float64):
    r"""Parameters of the FitNets linear regressor :math:`r(h) = h W + b`.

    Initialised like PyTorch's ``nn.Linear``: :math:`W_{ij}, b_j \sim U(-k, k)` with
    :math:`k = 1/\sqrt{H_s}`.

    Parameters
    ----------
    in_features : int
        Student hint-layer width :math:`H_s`.
    out_features : int
        Teacher guided-layer width :math:`H_t`.
    rng : int, numpy.random.Generator or None
        Seed or generator (``np.random.default_rng(rng)``).
    dtype : numpy dtype, default float64

    Returns
    -------
    dict
        ``{"W": ndarray of shape (H_s, H_t), "b": ndarray of shape (H_t,)}``.

    Examples
    --------
    >>> p = init_regressor(3, 5, rng=0)
    >>> p["W"].shape, p["b"].shape, bool(abs(p["W"]).max() <= 3 ** -0.5)
    ((3, 5), (5,), True)
    """
    func = "init_regressor"
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise param_error(name, func, "an int >= 1", repr(value), TypeError)
        if value < 1:
            raise param_error(name, func, "an int >= 1", repr(value))
    rng = np.random.default_rng(rng)
    k = 1.0 / np.sqrt(in_features)
    w = rng.uniform(-k, k, size=(in_features, out_features)).astype(dtype)
    b = rng.uniform(-k, k, size=out_features).astype(dtype)
    return {"W": w, "b": b}


def regressor_forward(h, W, b):
    r"""Forward pass of the FitNets linear regressor: :func:`minikd.linear_forward` by name.

    .. math::

        r = h W + b, \qquad
        \frac{\partial L}{\partial h} = \bar r W^\top, \quad
        \frac{\partial L}{\partial W} = h^\top \bar r, \quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n \bar r_n

    The regressor is an affine layer, so this is :func:`minikd.linear_forward` (which validates
    the inputs and names itself in its error messages), under the name FitNets gives it;
    :func:`regressor_backward` is :func:`minikd.linear_backward` likewise.

    Parameters
    ----------
    h : array_like of shape (N, H_s)
        Student hint-layer activations.
    W : array_like of shape (H_s, H_t)
    b : array_like of shape (H_t,)

    Returns
    -------
    out : ndarray of shape (N, H_t)
    cache : tuple
        What :func:`regressor_backward` needs.

    Examples
    --------
    >>> out, cache = regressor_forward([[1.0, 2.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [0, 0, 1])
    >>> out.tolist()
    [[1.0, 2.0, 4.0]]
    """
    return linear_forward(h, W, b)


def regressor_backward(dout, cache):
    r"""Backward pass of the FitNets linear regressor: :func:`minikd.linear_backward` by name.

    .. math::

        \bar h = \bar r W^\top, \qquad \bar W = h^\top \bar r, \qquad
        \bar b = \mathbf{1}^\top \bar r

    Parameters
    ----------
    dout : ndarray of shape (N, H_t)
        Upstream gradient dL/dr (for FitNets, the ``grad`` of :func:`hint_loss`).
    cache : tuple
        From :func:`regressor_forward`.

    Returns
    -------
    dh : ndarray of shape (N, H_s)
    dW : ndarray of shape (H_s, H_t)
    db : ndarray of shape (H_t,)

    Examples
    --------
    >>> _, cache = regressor_forward([[1.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> [g.tolist() for g in regressor_backward(np.array([[1.0, -1.0]]), cache)]
    [[[1.0, -1.0]], [[1.0, -1.0], [2.0, -2.0]], [1.0, -1.0]]
    """
    return linear_backward(dout, cache)


# ---------------------------------------------------------------------------------------------
# DistilBERT cosine


def cosine_loss(student_hidden, teacher_hidden):
    r"""DistilBERT's hidden-state loss: mean over rows of :math:`1 - \cos(s_n, t_n)`.

    .. math::

        c_n = \frac{\langle s_n, t_n\rangle}{\sqrt{(\|s_n\|^2 + \epsilon)(\|t_n\|^2 + \epsilon)}},
        \qquad L = \frac{1}{N}\sum_n (1 - c_n), \qquad
        \frac{\partial L}{\partial s_n} = -\frac{1}{N}\Big(
            \frac{t_n}{\sqrt{(\|s_n\|^2 + \epsilon)(\|t_n\|^2 + \epsilon)}}
            - c_n \frac{s_n}{\|s_n\|^2 + \epsilon}\Big)

    with :math:`\epsilon = 10^{-12}` added to the **squared** norms, as ATen's
    ``cosine_embedding_loss`` (target +1, ``reduction="mean"``), which HF DistilBERT
    (``alpha_cos``) and TextBrewer's ``cos_loss`` call. The epsilon keeps every input finite:
    a zero row has :math:`c_n = 0`, loss 1 and gradient :math:`-t_n / (N\sqrt{\epsilon(\|t_n\|^2
    + \epsilon)})`. Sanh et al. 2019, §3 ("cosine embedding loss").

    Parameters
    ----------
    student_hidden : array_like of shape (N, F)
        Student hidden states, one row per token or example.
    teacher_hidden : array_like of shape (N, F)
        Teacher hidden states (same width; DistilBERT keeps the teacher's width).

    Returns
    -------
    LossGrad
        ``loss`` in [0, 2] and ``grad`` of shape (N, F).

    Examples
    --------
    >>> out = cosine_loss([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [2.0, 2.0]])
    >>> round(out.loss, 6), (np.round(out.grad, 4) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    (0.5, [[0.0, -0.5], [0.0, 0.0]])
    """
    func = "cosine_loss"
    s, t = _student_teacher(student_hidden, teacher_hidden,
                            ("student_hidden", "teacher_hidden"), func, ndim=2)
    check_same_shape(s, t, "student_hidden", "teacher_hidden", func)
    n = s.shape[0]
    dot = np.einsum("nf,nf->n", s, t)  # (N,)
    ss = np.einsum("nf,nf->n", s, s) + COSINE_EPS  # (N,)
    tt = np.einsum("nf,nf->n", t, t) + COSINE_EPS  # (N,)
    denom = np.sqrt(ss * tt)  # (N,)
    cos = dot / denom  # (N,)
    loss = float(np.mean(1.0 - cos, dtype=np.float64))
    grad = -(t / denom[:, None] - (cos / ss)[:, None] * s) / s.dtype.type(n)  # (N, F)
    return LossGrad(loss, grad)


# ---------------------------------------------------------------------------------------------
# Attention transfer


AT_MAX_P = 16.0  # |f|^p overflows float32 at |f| = 3 for p ~ 80; the paper uses p = 1, 2, 4


def _check_p(p, func):
    expected = f"a float in the range [1, {AT_MAX_P:g}]"
    value = _as_real_scalar(p, "p", func, expected)
    if not (1.0 <= value <= AT_MAX_P):  # False for NaN too
        raise param_error("p", func, expected, repr(value))
    return value


def _attention_map(f, p, reduce):
    """``reduce_c |f|^p`` flattened to (N, S); returns the map and d(map)/d(f) without the 1/C."""
    a = np.abs(f) ** p  # (N, C, ...)
    a = a.mean(axis=1) if reduce == "mean" else a.sum(axis=1)  # (N, ...)
    return a.reshape(f.shape[0], -1)  # (N, S)


def attention_transfer_loss(student_maps, teacher_maps, *, p=2, mode="code"):
    r"""Attention transfer (Zagoruyko & Komodakis 2017), RepDistiller/author-code convention.

    .. math::

        A_n = \frac{1}{C}\sum_c |f_{nc}|^p, \quad
        q_n = \frac{A_n}{\max(\|A_n\|_2, \epsilon)}, \quad
        L = \frac{1}{N S} \sum_{n, s} (q^S_{ns} - q^T_{ns})^2

        \bar q = \frac{2}{N S}(q^S - q^T), \quad
        \bar A_n = \frac{\bar q_n - q_n \langle q_n, \bar q_n\rangle}{\|A_n\|}
        \;(\|A_n\| \ge \epsilon;\ \text{else } \bar q_n / \epsilon), \quad
        \frac{\partial L}{\partial f_{nc}} = \frac{p}{C}\,|f_{nc}|^{p-1}\operatorname{sign}(f_{nc})
        \, \bar A_n

    S is the number of spatial positions (H·W) and :math:`\epsilon = 10^{-12}` is
    ``F.normalize``'s; the student and teacher channel counts may differ because each map
    averages its own channels. ``mode="code"`` is the authors' ``utils.py`` (``at``/``at_loss``,
    identical in RepDistiller and mdistiller; weight β = 1000 there). Because :math:`q` is
    L2-normalised, the mean over channels gives the same :math:`q` as the sum (the 1/C cancels
    whenever :math:`\|A_n\| \ge \epsilon`).

    ``mode="paper"`` is eq. 2 of the paper as torchdistill's ``ATLoss(mode="paper")`` codes it:
    :math:`A_n = \sum_c |f_{nc}|^p`, and the **non-squared** norm averaged over the batch,

    .. math::

        L = \frac{1}{N}\sum_n \|q^S_n - q^T_n\|_2, \qquad
        \bar q_n = \frac{q^S_n - q^T_n}{N \|q^S_n - q^T_n\|_2}

    whose gradient is undefined where :math:`q^S_n = q^T_n`; there minikd returns 0, as
    PyTorch's ``norm`` backward does.

    The map uses :math:`|f|^p` (the paper's :math:`F^p_{sum}`, §3.1); the authors' code writes
    ``f.pow(p)``, which is the same for the p = 2 everyone uses. A zero feature map gives a zero
    attention map and a zero gradient (the factor :math:`|f|^{p-1}` vanishes for p > 1; for
    p = 1 minikd takes the subgradient 0 at f = 0). RepDistiller also average-pools the larger
    map to the smaller spatial size; minikd requires equal spatial sizes.

    Parameters
    ----------
    student_maps : array_like of shape (N, C_s, H, W)
        Student activations; any trailing spatial shape ``(N, C_s, ...)`` with at least one
        spatial axis works. For MLP features of shape (N, H) pass ``h[:, None, :]``.
    teacher_maps : array_like of shape (N, C_t, H, W)
        Teacher activations: same N and spatial shape, any channel count.
    p : float, default 2
        Exponent of the activations, :math:`1 \le p \le 16` (the paper uses 1, 2 and 4; a
        larger p overflows :math:`|f|^p`). The maps must keep :math:`|f|^p` below
        :func:`minikd._validation.feature_limit`.
    mode : {"code", "paper"}, default "code"

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` of shape (N, C_s, H, W).

    Examples
    --------
    >>> s = np.zeros((1, 2, 1, 2)); s[0, :, 0, 0] = 1.0
    >>> t = np.ones((1, 3, 1, 2))
    >>> out = attention_transfer_loss(s, t)
    >>> round(out.loss, 6)  # q_s = [1, 0], q_t = [0.7071, 0.7071]
    0.292893
    """
    func = "attention_transfer_loss"
    s, t = _student_teacher(student_maps, teacher_maps, ("student_maps", "teacher_maps"), func,
                            min_ndim=3)
    p = _check_p(p, func)
    check_feature_range(s, "student_maps", func, power=p)  # |f|^p and its squares stay finite
    check_feature_range(t, "teacher_maps", func, power=p)
    if mode not in AT_MODES:
        raise param_error("mode", func, f"one of {AT_MODES}", repr(mode))
    if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
        spatial = ", ".join(map(str, s.shape[2:]))
        raise param_error("teacher_maps", func, f"an array of shape ({s.shape[0]}, C_t, {spatial})"
                          " (same N and spatial size as student_maps)", f"shape {t.shape}")
    reduce = "mean" if mode == "code" else "sum"
    n, c = s.shape[0], s.shape[1]
    q_s, norm_s = l2_normalize(_attention_map(s, p, reduce))  # (N, S), (N, 1)
    q_t, _ = l2_normalize(_attention_map(t, p, reduce))  # (N, S)
    diff = q_s - q_t  # (N, S)
    if mode == "code":
        loss = float(np.mean(diff * diff, dtype=np.float64))
        dq = diff * diff.dtype.type(2.0 / diff.size)  # (N, S)
    else:
        dist = np.sqrt(np.einsum("ns,ns->n", diff, diff))[:, None]  # (N, 1)
        loss = float(np.sum(dist, dtype=np.float64) / n)
        # d||v||/dv = v/||v||, taken as 0 at v = 0 like torch.norm's backward.
        dq = np.divide(diff, n * dist, out=np.zeros_like(diff), where=dist > 0)
    da = l2_normalize_vjp(dq, q_s, norm_s).reshape((n,) + s.shape[2:])  # (N, H, W)
    # d|f|^p/df = p |f|^(p-1) sign(f); written as 2f for p = 2 so it is exact.
    dmap = 2.0 * s if p == 2.0 else p * np.abs(s) ** (p - 1.0) * np.sign(s)  # (N, C, H, W)
    if mode == "code":
        da = da / s.dtype.type(c)  # the channel mean
    return LossGrad(loss, dmap * da[:, None])
