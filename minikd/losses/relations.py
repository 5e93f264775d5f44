r"""Relation-based distillation: the student copies how the teacher relates the examples.

* :func:`rkd_distance_loss`, :func:`rkd_angle_loss` — Park et al. 2019 (RKD), as RepDistiller
  and the authors' code (lenscloth/RKD) compute them.
* :func:`sp_loss` — similarity-preserving KD (Tung & Mori 2019).
* :func:`pkt_loss` — probabilistic knowledge transfer (Passalis & Tefas 2018).

Inputs: student features (N, F_s) and teacher features (N, F_t); only the N rows must pair up
(trailing axes are flattened, as the anchors' ``.view(N, -1)``). Each loss returns
:class:`minikd.LossGrad` with the gradient with respect to the student's features, checks its
arguments once and calls its kernel (``sp_loss_kernel``, ...). Where the gradient is undefined
minikd returns a finite value (docs/derivations/*.md say which), except RKD distance on one row.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_memory, check_pair, feature_limit, param_error
from .normalize import l2_norm, l2_normalize, l2_normalize_vjp
from .reduction import LossGrad

__all__ = ["pkt_loss", "rkd_angle_loss", "rkd_distance_loss", "sp_loss"]

RKD_DIST_EPS = 1e-12  # clamp on squared distances (RepDistiller/lenscloth pdist)
PKT_EPS = 1e-7  # passalis/probabilistic_kt, RepDistiller, mdistiller, torchdistill
NAMES = ("student_features", "teacher_features")


def _check_gram_range(s, t, func):
    """Gram entries and squared distances (up to 4 F max|x|²) must not overflow: check_pair's
    bound, sqrt(max float) / 1e3, leaves room for 1e5 of them; wider rows get a lower bound."""
    for x, name in ((s, NAMES[0]), (t, NAMES[1])):
        F = x[0].size
        limit = feature_limit(x.dtype) * math.sqrt(1e5 / F)
        if F > 1e5 and np.abs(x).max() > limit:
            raise param_error(name, func, f"values with |x| <= {limit:.3g} for rows of {F} "
                              f"features (larger ones overflow in {x.dtype})",
                              f"|x| = {np.abs(x).max():.3g}")


def _check_memory(s, t, func, *, triples=False):
    """The batch's arrays must fit in memory; measured peaks: about 12 N² + 6 N F numbers, or
    6 N³ + 6 N² F for RKD angle's (N, N, N) triples."""
    N, F = len(s), max(s[0].size, t[0].size)
    numbers = 6 * N**3 + 6 * N**2 * F if triples else 12 * N**2 + 6 * N * F
    check_memory(numbers * s.dtype.itemsize, NAMES[0], func,
                 f"{'(N, N, N) triples' if triples else '(N, N) matrices'} for N = {N} fit")


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
    _check_gram_range(s, t, func)  # squared distances sum F squares
    _check_memory(s, t, func)
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
    _check_memory(s, t, func, triples=True)
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


def sp_loss(student_features, teacher_features):
    r"""Similarity-preserving KD (Tung & Mori 2019, §3, eq. 1-4), RepDistiller convention.

    .. math::

        G_s = s s^\top, \quad
        \hat G_{s,i} = \frac{G_{s,i}}{\max(\|G_{s,i}\|_2, \epsilon)}, \quad
        L = \frac{1}{N^2}\|\hat G_t - \hat G_s\|_F^2

        \bar{\hat G} = \frac{2}{N^2}(\hat G_s - \hat G_t), \quad
        \bar G_i = \text{normalize-vjp}(\bar{\hat G}_i), \quad
        \frac{\partial L}{\partial s} = (\bar G + \bar G^\top)\, s

    :math:`G_{s,i}` is row i of the student's (N, N) Gram matrix, :math:`\hat G_t` the same
    on the teacher's features, :math:`\epsilon = 10^{-12}` (``F.normalize``). Invariant to a
    global scale of either side, not to per-sample scales. RepDistiller and mdistiller weight
    it by 3000 (torchdistill's sample config by 1). As in the reference, a zero student row
    has a gradient of order :math:`10^{12}` (``normalize``'s clamp) unless the teacher's row is
    zero too; N = 1 gives loss 0 (or 1 with zero gradient for a zero row).

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
    >>> s = [[1.0, 0.0], [0.0, 1.0]]   # orthogonal: G = I
    >>> t = [[1.0], [1.0]]             # parallel: G_hat = all 1/sqrt(2)
    >>> round(sp_loss(s, t).loss, 6)   # (2 (1 - 0.7071)^2 + 2 (0.7071)^2) / 4
    0.292893
    """
    s, t = check_pair(student_features, teacher_features, "sp_loss", names=NAMES, match="rows")
    _check_gram_range(s, t, "sp_loss")  # Gram entries sum F products
    _check_memory(s, t, "sp_loss")
    return sp_loss_kernel(s, t)


def sp_loss_kernel(student_features, teacher_features):
    """:func:`sp_loss` on checked arguments (same N, one float dtype)."""
    s = student_features.reshape(len(student_features), -1)  # (N, F_s)
    t = teacher_features.reshape(len(teacher_features), -1)  # (N, F_t)
    N = len(s)
    G_hat_t, _ = l2_normalize(t @ t.T)  # (N, N) rows of unit norm
    G_hat_s, norm = l2_normalize(s @ s.T)  # (N, N), (N, 1)
    diff = G_hat_s - G_hat_t  # (N, N)
    loss = float((diff**2).sum() / N**2)
    dG = l2_normalize_vjp(2.0 / N**2 * diff, G_hat_s, norm)  # (N, N) dL/dG_s
    grad = (dG + dG.T) @ s  # (N, F_s)
    return LossGrad(loss, grad.reshape(student_features.shape))


def pkt_loss(student_features, teacher_features):
    r"""Probabilistic knowledge transfer (Passalis & Tefas 2018, §3, eq. 7-10), author code.

    .. math::

        \hat x_i = \frac{x_i}{\|x_i\| + \epsilon}, \quad
        K_{ij} = \tfrac12(\hat x_i \!\cdot\! \hat x_j + 1), \quad
        P_{ij} = \frac{K_{ij}}{\sum_k K_{ik}}, \quad
        L = \frac{1}{N^2}\sum_{i,j} P_{t,ij}\log\frac{P_{t,ij} + \epsilon}{P_{s,ij} + \epsilon}

        \bar P_{ij} = -\frac{P_{t,ij}}{N^2 (P_{s,ij} + \epsilon)}, \quad
        \bar K_{ij} = \frac{\bar P_{ij} - \sum_k \bar P_{ik} P_{s,ik}}{\sum_k K_{s,ik}}, \quad
        \bar{\hat s} = \tfrac12(\bar K + \bar K^\top)\hat s, \quad
        \frac{\partial L}{\partial s_i} = \frac{\bar{\hat s}_i}{\|s_i\| + \epsilon}
            - \frac{\hat s_i\,\langle \hat s_i, \bar{\hat s}_i\rangle}{\|s_i\|}

    with :math:`\epsilon = 10^{-7}` throughout; :math:`\hat x`, :math:`K`, :math:`P` are built
    alike from the student's features (:math:`\hat s, K_s, P_s`) and the teacher's
    (:math:`P_t`). The mean runs over all :math:`N^2` entries, as in passalis/probabilistic_kt,
    RepDistiller, mdistiller and torchdistill (weight 30000). Invariant (up to
    :math:`\epsilon/\|x_i\|`) to a positive scale of each row. At a zero student row the last
    term is 0/0 with limit 0: minikd returns the finite :math:`\bar{\hat s}_i / \epsilon`
    (PyTorch's autograd: NaN). N = 1 gives loss 0 and a zero gradient.

    Parameters
    ----------
    student_features : array_like of shape (N, F_s)
    teacher_features : array_like of shape (N, F_t)
        A constant (no gradient).

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` of shape (N, F_s).

    Examples
    --------
    >>> s = [[1.0, 0.0], [0.0, 1.0]]     # orthogonal: K = [[1, .5], [.5, 1]]
    >>> t = [[1.0], [1.0]]               # parallel:   K = all 1, P = all 1/2
    >>> round(pkt_loss(s, t).loss, 6)    # P_s = [[2/3, 1/3], [1/3, 2/3]]: (1/4) log(9/8)
    0.029446
    """
    s, t = check_pair(student_features, teacher_features, "pkt_loss", names=NAMES, match="rows")
    _check_memory(s, t, "pkt_loss")
    return pkt_loss_kernel(s, t)


def pkt_loss_kernel(student_features, teacher_features):
    """:func:`pkt_loss` on checked arguments (same N, one float dtype)."""
    s = student_features.reshape(len(student_features), -1)  # (N, F_s)
    t = teacher_features.reshape(len(teacher_features), -1)  # (N, F_t)
    N = len(s)
    t_hat = t / (l2_norm(t) + PKT_EPS)  # (N, F_t)
    K_t = (t_hat @ t_hat.T + 1.0) / 2.0  # (N, N) cosine kernel mapped to [0, 1]
    P_t = K_t / K_t.sum(axis=1, keepdims=True)  # (N, N) rows sum to 1
    r = l2_norm(s)  # (N, 1) ||s_i||
    s_hat = s / (r + PKT_EPS)  # (N, F_s)
    K_s = (s_hat @ s_hat.T + 1.0) / 2.0  # (N, N)
    R = K_s.sum(axis=1, keepdims=True)  # (N, 1), >= 1/2 since K_s,ii >= 1/2
    P_s = K_s / R  # (N, N)
    loss = float((P_t * np.log((P_t + PKT_EPS) / (P_s + PKT_EPS))).mean())
    dP = -P_t / (N**2 * (P_s + PKT_EPS))  # (N, N)
    dK = (dP - (dP * P_s).sum(axis=1, keepdims=True)) / R  # (N, N)
    ds_hat = 0.5 * (dK + dK.T) @ s_hat  # (N, F_s)
    # d s_hat_i / d s_i = I / (r_i + eps) - s_hat_i s_hat_i.T / r_i; the second term is 0 at
    # s_i = 0 (its limit: s_hat_i = 0 there)
    radial = (s_hat * ds_hat).sum(axis=1, keepdims=True)  # (N, 1)
    radial = np.divide(radial, r, out=np.zeros_like(radial), where=r > 0)  # (N, 1)
    grad = ds_hat / (r + PKT_EPS) - s_hat * radial  # (N, F_s)
    return LossGrad(loss, grad.reshape(student_features.shape))
