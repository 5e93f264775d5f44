r"""Relational knowledge distillation (Park et al. 2019, RKD), as RepDistiller and the authors'
code (lenscloth/RKD) compute it: :func:`rkd_distance_loss` compares the normalised pairwise
distances of the batch, :func:`rkd_angle_loss` the angles of its triples, both through the
smooth-L1 (Huber) loss. Inputs as for every relation loss (:mod:`minikd.losses.relations`):
student (N, F_s) and teacher (N, F_t) features whose N rows pair up.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_pair, param_error
from .normalize import l2_normalize, l2_normalize_vjp
from .reduction import LossGrad
from .relation_checks import NAMES, check_gram_range, check_relation_memory

__all__ = ["RKD_DIST_EPS", "pairwise_distances", "rkd_angle_loss", "rkd_distance_loss",
           "smooth_l1"]

RKD_DIST_EPS = 1e-12  # clamp on squared distances (RepDistiller/lenscloth pdist)


def smooth_l1(x):
    """Elementwise smooth-L1 (``F.smooth_l1_loss``, beta = 1) and its slope: x²/2 for |x| < 1,
    |x| - 1/2 beyond, slope x clipped to [-1, 1]."""
    value = np.where(np.abs(x) < 1.0, 0.5 * x**2, np.abs(x) - 0.5)
    return value, np.clip(x, -1.0, 1.0)


def pairwise_distances(e, clamp=RKD_DIST_EPS):
    r"""RKD's pairwise distances: expanded squared distances clamped at ``clamp``, zero diagonal.

    .. math::

        d_{ij} = \sqrt{\max(\|e_i\|^2 + \|e_j\|^2 - 2\, e_i \cdot e_j,\ \text{clamp})}
        \ (i \ne j), \qquad d_{ii} = 0

    Returns ``(d, active)``, both (N, N); ``active`` marks the off-diagonal entries not
    clamped, through which alone a gradient flows. The clamp is 1e-12 in RepDistiller and
    lenscloth/RKD, 1e-10 in KD_Lib (:func:`minikd.rkd_loss_as`).
    """
    sq = (e**2).sum(axis=1)  # (N,) ||e_i||²
    d2 = sq[:, None] + sq[None, :] - 2.0 * (e @ e.T)  # (N, N) ||e_i - e_j||², expanded
    off_diagonal = ~np.eye(len(e), dtype=bool)  # (N, N)
    d = np.where(off_diagonal, np.sqrt(np.maximum(d2, clamp)), 0.0)  # (N, N)
    return d, off_diagonal & (d2 >= clamp)


def rkd_distance_loss(student_features, teacher_features):
    r"""RKD distance loss (Park et al. 2019, §3.2.1, eq. 4-5), RepDistiller/lenscloth convention.

    .. math::

        d_{ij} = \sqrt{\max(\|s_i\|^2 + \|s_j\|^2 - 2 s_i\!\cdot\! s_j,\ 10^{-12})}\ (i \ne j),
        \quad d_{ii} = 0, \quad
        \mu = \frac{1}{N(N-1)}\sum_{i \ne j} d_{ij}, \quad \psi_{s,ij} = d_{ij} / \mu

        L = \frac{1}{N^2}\sum_{i,j} \ell_\delta(\psi_{s,ij} - \psi_{t,ij}), \qquad
        \ell_\delta(x) = \begin{cases} x^2/2 & |x| < 1 \\ |x| - 1/2 & \text{else}\end{cases}

        g_{ij} = \frac{\ell_\delta'(\psi_{s,ij} - \psi_{t,ij})}{N^2}, \quad
        \bar d_{ij} = \frac{1}{\mu}\Big(g_{ij}
            - \frac{1}{N(N-1)}\sum_{kl} g_{kl}\, \psi_{s,kl}\Big)\ (i \ne j), \quad
        \frac{\partial L}{\partial s_i}
            = \sum_{j \ne i} (\bar d_{ij} + \bar d_{ji})\, [d^2_{ij} \ge 10^{-12}]\,
              \frac{s_i - s_j}{d_{ij}}

    :math:`\psi_t` is the same construction on the teacher's features, with its own mean. The
    loss averages all :math:`N^2` entries, the zero diagonal included; :math:`\mu` the
    :math:`N(N-1)` non-zero ones. RepDistiller weights it by :math:`w_d = 25` (the authors'
    README: 1, with angle 2). As in the reference, duplicate rows (:math:`d^2_{ij} < 10^{-12}`)
    get :math:`d_{ij} = 10^{-6}` and pass no gradient; N = 1 (0/0, NaN there) raises ValueError.

    Parameters
    ----------
    student_features : array_like of shape (N, F_s), N >= 2
    teacher_features : array_like of shape (N, F_t)
        A constant (no gradient).

    Returns
    -------
    LossGrad
        ``loss`` (float, >= 0) and ``grad`` of shape (N, F_s).

    Examples
    --------
    >>> s = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]   # right isosceles triangle
    >>> t = [[0.0], [1.0], [2.0]]                  # three points on a line
    >>> round(rkd_distance_loss(s, t).loss, 6)  # psi_s (.879, .879, 1.243), psi_t (.75, 1.5, .75)
    0.071699
    """
    func = "rkd_distance_loss"
    s, t = check_pair(student_features, teacher_features, func, names=NAMES, match="rows")
    check_gram_range(s, t, func)  # squared distances sum F squares
    check_relation_memory(s, t, func)
    if len(s) < 2:
        raise param_error(NAMES[0], func, "an array with at least 2 rows (RKD compares pairs)",
                          f"shape {s.shape}")
    return rkd_distance_loss_kernel(s, t)


def rkd_distance_loss_kernel(student_features, teacher_features):
    """:func:`rkd_distance_loss` on checked arguments (same N >= 2, one float dtype)."""
    s = student_features.reshape(len(student_features), -1)  # (N, F_s)
    t = teacher_features.reshape(len(teacher_features), -1)  # (N, F_t)
    N = len(s)
    pairs = N * (N - 1)  # the off-diagonal entries
    d_t, _ = pairwise_distances(t)  # (N, N)
    psi_t = d_t / (d_t.sum() / pairs)  # (N, N) teacher distances in units of their mean
    d, active = pairwise_distances(s)  # (N, N)
    mu = d.sum() / pairs
    psi_s = d / mu  # (N, N)
    value, slope = smooth_l1(psi_s - psi_t)  # (N, N)
    loss = float(value.mean())
    g = slope / N**2  # (N, N) dL/dpsi_s
    dd = (g - (g * psi_s).sum() / pairs) / mu  # (N, N) dL/dd, through psi_s and mu
    # d d_ij / d s_i = (s_i - s_j) / d_ij on active pairs; clamped pairs pass nothing
    a = np.divide(dd + dd.T, d, out=np.zeros_like(dd), where=active)  # (N, N)
    grad = a.sum(axis=1, keepdims=True) * s - a @ s  # (N, F_s)
    return LossGrad(loss, grad.reshape(student_features.shape))


def rkd_angle_loss(student_features, teacher_features):
    r"""RKD angle loss (Park et al. 2019, §3.2.2, eq. 6-7), RepDistiller/lenscloth convention.

    .. math::

        u_{ij} = \frac{s_j - s_i}{\max(\|s_j - s_i\|, \epsilon)}, \quad
        \psi_{s,ijk} = \langle u_{ij}, u_{ik}\rangle, \quad
        L = \frac{1}{N^3}\sum_{i,j,k} \ell_\delta(\psi_{s,ijk} - \psi_{t,ijk})

        g_{ijk} = \frac{\ell_\delta'(\psi_{s,ijk} - \psi_{t,ijk})}{N^3}, \quad
        \bar u_{ij} = \sum_k (g_{ijk} + g_{ikj})\, u_{ik}, \quad
        \bar v_{ij} = \text{normalize-vjp}(\bar u_{ij}), \quad
        \frac{\partial L}{\partial s_m} = \sum_i \bar v_{im} - \sum_j \bar v_{mj}

    with :math:`\epsilon = 10^{-12}` (``F.normalize``), :math:`\ell_\delta` the smooth-L1 of
    :func:`rkd_distance_loss` and :math:`\psi_t` the teacher's angles. The mean runs over all
    :math:`N^3` triples (memory :math:`O(N^3)`: a batch that cannot fit is refused); a
    degenerate triple (j = i, k = i, or a duplicate row) has :math:`\psi = 0` on that side.
    RepDistiller weights it by :math:`w_a = 50`. N = 1 and N = 2 give loss 0 and zero
    gradient. **Duplicate student rows** give :math:`u_{ij} = 0`, where ``normalize``'s
    Jacobian is :math:`I/\epsilon`: a finite gradient of order :math:`10^{12}`, exactly as
    PyTorch computes it; deduplicate batches.

    Parameters
    ----------
    student_features : array_like of shape (N, F_s)
    teacher_features : array_like of shape (N, F_t)
        A constant (no gradient).

    Returns
    -------
    LossGrad
        ``loss`` (float, >= 0) and ``grad`` of shape (N, F_s).

    Examples
    --------
    >>> s = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]   # angles 90, 45, 45 degrees
    >>> t = [[0.0], [1.0], [2.0]]                  # collinear: angles 0 or 180 degrees
    >>> round(rkd_angle_loss(s, t).loss, 6)  # smooth-L1 sum 3.5 over 27 triples = 7/54
    0.12963
    """
    func = "rkd_angle_loss"
    s, t = check_pair(student_features, teacher_features, func, names=NAMES, match="rows")
    check_relation_memory(s, t, func, triples=True)
    return rkd_angle_loss_kernel(s, t)


def rkd_angle_loss_kernel(student_features, teacher_features):
    """:func:`rkd_angle_loss` on checked arguments (same N, one float dtype)."""
    s = student_features.reshape(len(student_features), -1)  # (N, F_s)
    t = teacher_features.reshape(len(teacher_features), -1)  # (N, F_t)
    N = len(s)
    u_t, _ = l2_normalize(t[None, :, :] - t[:, None, :])  # (N, N, F_t) [i, j]: unit(t_j - t_i)
    psi_t = u_t @ u_t.transpose(0, 2, 1)  # (N, N, N) [i, j, k]: <u_t,ij, u_t,ik>
    u, norm = l2_normalize(s[None, :, :] - s[:, None, :])  # (N, N, F_s), (N, N, 1)
    psi_s = u @ u.transpose(0, 2, 1)  # (N, N, N)
    value, slope = smooth_l1(psi_s - psi_t)  # (N, N, N)
    loss = float(value.mean())
    g = slope / N**3  # (N, N, N) dL/dpsi_s
    du = (g + g.transpose(0, 2, 1)) @ u  # (N, N, F_s) u_ij sits in psi_ijk and psi_ikj
    dv = l2_normalize_vjp(du, u, norm)  # (N, N, F_s) dL/d(s_j - s_i)
    grad = dv.sum(axis=0) - dv.sum(axis=1)  # (N, F_s)
    return LossGrad(loss, grad.reshape(student_features.shape))
