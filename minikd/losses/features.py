r"""Feature-based distillation: the student copies the teacher's inner features.

* :func:`hint_loss` — FitNets (Romero et al. 2015): mean squared error between the teacher's
  *hint* layer and the student's *guided* layer, after a learned regressor that maps the
  student's width to the teacher's (:mod:`minikd.nn.regressor`).
* :func:`cosine_loss` — DistilBERT's hidden-state loss: mean over rows of ``1 - cos``.
* :func:`attention_transfer_loss` — Zagoruyko & Komodakis 2017 on ``(N, C, H, W)`` maps.

Every loss returns :class:`minikd.LossGrad` with the gradient with respect to the **student**
input; the teacher input is a constant. Each public loss checks its arguments once and calls
its kernel (``hint_loss_kernel``, ...), which trusts them. Conventions follow RepDistiller and
the authors' code; the docstrings name the other variants.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import check_choice, check_pair, param_error
from .normalize import l2_norm, l2_normalize, l2_normalize_vjp
from .reduction import LossGrad

__all__ = ["attention_transfer_loss", "cosine_loss", "hint_loss"]

COSINE_EPS = 1e-12  # ATen's EPSILON in cosine_embedding_loss, added to the squared norms
AT_MODES = ("code", "paper")
AT_MAX_P = 16.0  # |f|^p overflows float32 at |f| = 3 for p ~ 80; the paper uses p = 1, 2, 4


# ---------------------------------------------------------------------------------------------
# FitNets


def hint_loss(student_features, teacher_features):
    r"""FitNets hint loss: mean squared error over all elements (``nn.MSELoss()``).

    .. math::

        L = \frac{1}{M} \sum_{m=1}^{M} (s_m - t_m)^2, \qquad
        \frac{\partial L}{\partial s_m} = \frac{2}{M} (s_m - t_m)

    where M is the number of elements (N·F for a batch of features). In FitNets (Romero et al.
    2015, §2.2, eq. 3) the *hint* is the output :math:`t` of a teacher's hidden layer, and the
    student's *guided* layer learns to predict it: ``s`` is the output of a learned regressor
    :math:`r(h_s) = h_s W + b` (:func:`minikd.regressor_forward`) applied to the guided layer,
    so that widths match. The paper writes ½‖·‖² per example; RepDistiller and mdistiller use
    the element mean coded here, and weight it by 100.

    Parameters
    ----------
    student_features : array_like of shape (N, F) or (N, ...)
        The (regressed) output of the student's guided layer.
    teacher_features : array_like, same shape as ``student_features``
        The teacher's hint (a constant).

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
    s, t = check_pair(student_features, teacher_features, "hint_loss",
                      names=("student_features", "teacher_features"))
    return hint_loss_kernel(s, t)


def hint_loss_kernel(student_features, teacher_features):
    """:func:`hint_loss` on checked arguments (float arrays of one dtype and shape)."""
    diff = student_features - teacher_features  # (N, F)
    M = diff.size
    # the mean of (s - t)², each term divided by M before the sum so the sum cannot overflow
    loss = float(((diff / math.sqrt(M)) ** 2).sum())
    return LossGrad(loss, 2.0 / M * diff)  # (N, F)


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
    (``alpha_cos``) and TextBrewer's ``cos_loss`` call. Sanh et al. 2019, §2 (the "Training
    loss" paragraph introduces the cosine embedding loss :math:`L_{cos}`). The epsilon keeps
    every input finite: a zero row has :math:`c_n = 0`, loss 1 and gradient
    :math:`-t_n / (N\sqrt{\epsilon(\|t_n\|^2 + \epsilon)})`. minikd evaluates the formula on
    each row divided by :math:`a_n = \max(1, \max_f |x_{nf}|)` (and :math:`\epsilon` by
    :math:`a_n^2`): the same numbers, without squares that overflow for large features.

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
    s, t = check_pair(student_hidden, teacher_hidden, "cosine_loss",
                      names=("student_hidden", "teacher_hidden"), ndim=2)
    return cosine_loss_kernel(s, t)


def cosine_loss_kernel(student_hidden, teacher_hidden):
    """:func:`cosine_loss` on checked arguments (float arrays of one dtype, shape (N, F))."""
    # Rows scaled to max |x| <= 1 first, the eps with them, so that no square overflows.
    a = np.maximum(np.abs(student_hidden).max(axis=1, keepdims=True), 1.0)  # (N, 1)
    b = np.maximum(np.abs(teacher_hidden).max(axis=1, keepdims=True), 1.0)  # (N, 1)
    s, t = student_hidden / a, teacher_hidden / b  # (N, F)
    N = len(s)
    dot = np.einsum("nf,nf->n", s, t)[:, None]  # (N, 1) <s_n, t_n>
    ss = np.einsum("nf,nf->n", s, s)[:, None] + COSINE_EPS / a**2  # (N, 1) ||s_n||² + eps, / a²
    tt = np.einsum("nf,nf->n", t, t)[:, None] + COSINE_EPS / b**2  # (N, 1)
    D = np.sqrt(ss * tt)  # (N, 1)
    cos = dot / D  # (N, 1) c_n: the scales cancel
    loss = float((1.0 - cos).mean())
    grad = (cos * s / ss - t / D) / (N * a)  # (N, F), 1/a from s / a
    return LossGrad(loss, grad)


# ---------------------------------------------------------------------------------------------
# Attention transfer


def attention_transfer_loss(student_maps, teacher_maps, *, p=2, mode="code"):
    r"""Attention transfer (Zagoruyko & Komodakis 2017), RepDistiller/author-code convention.

    .. math::

        A_n = \frac{1}{C}\sum_c |f_{nc}|^p, \quad
        q_n = \frac{A_n}{\max(\|A_n\|_2, \epsilon)}, \quad
        L = \frac{1}{N\,HW} \sum_{n, k} (q_{s,nk} - q_{t,nk})^2

        \bar q = \frac{2}{N\,HW}(q_s - q_t), \quad
        \bar A_n = \frac{\bar q_n - q_n \langle q_n, \bar q_n\rangle}{\|A_n\|}
        \;(\|A_n\| \ge \epsilon;\ \text{else } \bar q_n / \epsilon), \quad
        \frac{\partial L}{\partial f_{nc}} = \frac{p}{C}\,|f_{nc}|^{p-1}\operatorname{sign}(f_{nc})
        \, \bar A_n

    with :math:`A_n, q_n \in \mathbb R^{HW}` (one entry per spatial position k) built from the
    student's maps (:math:`q_s`) and the teacher's (:math:`q_t`), and :math:`\epsilon =
    10^{-12}` ``F.normalize``'s. The student and teacher channel counts may differ because each
    map averages its own channels. ``mode="code"`` is the authors' ``utils.py``
    (``at``/``at_loss``, identical in RepDistiller and mdistiller; weight β = 1000 there).
    Because :math:`q` is L2-normalised, the mean over channels gives the same :math:`q` as the
    sum (the 1/C cancels whenever :math:`\|A_n\| \ge \epsilon`).

    ``mode="paper"`` is eq. 2 of the paper as torchdistill's ``ATLoss(mode="paper")`` codes it:
    :math:`A_n = \sum_c |f_{nc}|^p`, and the **non-squared** norm averaged over the batch,

    .. math::

        L = \frac{1}{N}\sum_n \|q_{s,n} - q_{t,n}\|_2, \qquad
        \bar q_n = \frac{q_{s,n} - q_{t,n}}{N \|q_{s,n} - q_{t,n}\|_2}

    whose gradient is undefined where :math:`q_{s,n} = q_{t,n}`; there minikd returns 0, as
    PyTorch's ``norm`` backward does (and then :math:`\partial L / \partial f_{nc}` drops the
    :math:`1/C`).

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
        larger p overflows :math:`|f|^p`). The maps must keep :math:`|f|^p` below the feature
        bound (1.3e151 in float64, 1.8e16 in float32).
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
    p = _check_p(p, func)
    f_s, f_t = check_pair(student_maps, teacher_maps, func, names=("student_maps", "teacher_maps"),
                          match="rows", min_ndim=3, power=p)  # |f|^p and its squares stay finite
    check_choice(mode, "mode", func, AT_MODES)
    if f_s.shape[2:] != f_t.shape[2:]:
        spatial = ", ".join(map(str, f_s.shape[2:]))
        raise param_error("teacher_maps", func, f"an array of shape ({f_s.shape[0]}, C_t, "
                          f"{spatial}) (same N and spatial size as student_maps)",
                          f"shape {f_t.shape}")
    return attention_transfer_loss_kernel(f_s, f_t, p=p, mode=mode)


def _check_p(p, func):
    expected = f"a float in the range [1, {AT_MAX_P:g}]"
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise param_error("p", func, expected, repr(p), TypeError)
    if not (1.0 <= p <= AT_MAX_P):  # False for NaN too
        raise param_error("p", func, expected, repr(float(p)))
    return float(p)


def attention_transfer_loss_kernel(student_maps, teacher_maps, *, p, mode):
    """:func:`attention_transfer_loss` on checked arguments (same N and spatial shape)."""
    f_s, f_t = student_maps, teacher_maps
    N, C = f_s.shape[:2]
    channels = np.mean if mode == "code" else np.sum  # the authors' channel mean, or eq. 2's sum
    A_s = channels(np.abs(f_s) ** p, axis=1).reshape(N, -1)  # (N, HW)
    A_t = channels(np.abs(f_t) ** p, axis=1).reshape(N, -1)  # (N, HW)
    q_s, norm_s = l2_normalize(A_s)  # (N, HW), (N, 1)
    q_t, _ = l2_normalize(A_t)  # (N, HW)
    diff = q_s - q_t  # (N, HW)
    if mode == "code":
        loss = float((diff**2).mean())
        dq = 2.0 / diff.size * diff  # (N, HW)
    else:
        dist = l2_norm(diff)  # (N, 1) ||q_s,n - q_t,n||
        loss = float(dist.sum() / N)
        # d||v||/dv = v/||v||, taken as 0 at v = 0 like torch.norm's backward
        dq = np.divide(diff, N * dist, out=np.zeros_like(diff), where=dist > 0)  # (N, HW)
    dA = l2_normalize_vjp(dq, q_s, norm_s).reshape((N, 1) + f_s.shape[2:])  # (N, 1, H, W)
    dmap = p * np.abs(f_s) ** (p - 1) * np.sign(f_s)  # d|f|^p / df, (N, C, H, W)
    if mode == "code":
        dmap = dmap / C  # the channel mean
    return LossGrad(loss, dmap * dA)  # (N, C, H, W)
