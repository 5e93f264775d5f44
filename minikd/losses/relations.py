r"""Relation-based distillation: the student copies how the teacher relates the examples.

* :func:`rkd_distance_loss`, :func:`rkd_angle_loss` — Park et al. 2019 (RKD), as RepDistiller
  and the authors' code (lenscloth/RKD) compute them.
* :func:`sp_loss` — similarity-preserving KD (Tung & Mori 2019).
* :func:`pkt_loss` — probabilistic knowledge transfer (Passalis & Tefas 2018).

Inputs are a batch of student features ``s`` of shape (N, F_s) and teacher features ``t`` of
shape (N, F_t): the widths may differ, only the N rows must pair up (trailing axes beyond the
second are flattened, as the anchors' ``.view(N, -1)``). Each loss returns
:class:`minikd.LossGrad` with the gradient with respect to ``s``; ``t`` is a constant.
Where the gradient is undefined, each docstring says what minikd returns: always a finite
value and gradient, except RKD distance on a single row, which raises ValueError.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_feature_range, common_float_dtype, param_error
from .normalize import l2_normalize, l2_normalize_vjp
from .reduction import LossGrad

__all__ = ["pkt_loss", "rkd_angle_loss", "rkd_distance_loss", "sp_loss"]

RKD_DIST_EPS = 1e-12  # clamp on squared distances (RepDistiller/lenscloth pdist)
PKT_EPS = 1e-7  # passalis/probabilistic_kt, RepDistiller, mdistiller, torchdistill


def _pair(s, t, func, *, min_rows=1):
    """Validate (N, F_s), (N, F_t) batches, flatten trailing axes, share one float dtype."""
    s = as_float_array(s, "s", func, min_ndim=2, check_finite=False)
    t = as_float_array(t, "t", func, min_ndim=2, check_finite=False)
    dtype = common_float_dtype(s, t)
    s, t = s.astype(dtype, copy=False), t.astype(dtype, copy=False)
    check_feature_range(s, "s", func)  # distances, Gram matrices, norms: sums of squares
    check_feature_range(t, "t", func)
    if t.shape[0] != s.shape[0]:
        raise param_error("t", func, f"an array with N = {s.shape[0]} rows (one per row of s)",
                          f"shape {t.shape}")
    if s.shape[0] < min_rows:
        raise param_error("s", func, f"an array with at least {min_rows} rows",
                          f"shape {s.shape}")
    return s.reshape(s.shape[0], -1), t.reshape(t.shape[0], -1)


def _smooth_l1(x):
    """Elementwise smooth-L1 with beta = 1 and its derivative (PyTorch's F.smooth_l1_loss)."""
    # c = min(|x|, 1) gives both branches in one pass: c (|x| - c/2) is x^2/2 below 1 and
    # |x| - 1/2 above; the slope is x clipped to [-1, 1].
    ax = np.abs(x)
    c = np.minimum(ax, 1.0)
    return c * (ax - 0.5 * c), np.clip(x, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# RKD distance


def _pdist(e, clamp=RKD_DIST_EPS):
    """RKD's pairwise distances: expanded squared distances clamped at ``clamp``, zero diagonal.

    Returns ``(d, active)``; ``active`` marks entries whose squared distance was not clamped,
    the only ones through which a gradient flows (off the diagonal). The clamp is 1e-12 in
    RepDistiller/lenscloth, 1e-10 in KD_Lib (:mod:`minikd.conventions`).
    """
    sq = np.einsum("nf,nf->n", e, e)  # (N,)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (e @ e.T)  # (N, N)
    active = d2 >= clamp
    d = np.sqrt(np.maximum(d2, clamp))  # (N, N)
    np.fill_diagonal(d, 0.0)
    np.fill_diagonal(active, False)
    return d, active


def rkd_distance_loss(s, t):
    r"""RKD distance loss (Park et al. 2019, §3.2.1, eq. 4-5), RepDistiller/lenscloth convention.

    .. math::

        d_{ij} = \sqrt{\max(\|s_i\|^2 + \|s_j\|^2 - 2 s_i\!\cdot\! s_j,\ 10^{-12})}\ (i \ne j),
        \quad d_{ii} = 0, \quad
        \mu = \frac{1}{N(N-1)}\sum_{i \ne j} d_{ij}, \quad \psi_{ij} = d_{ij} / \mu

        L = \frac{1}{N^2}\sum_{i,j} \ell_\delta(\psi_{ij} - \psi^T_{ij}), \qquad
        \ell_\delta(x) = \begin{cases} x^2/2 & |x| < 1 \\ |x| - 1/2 & \text{else}\end{cases}

        g_{ij} = \frac{\ell_\delta'(\psi_{ij} - \psi^T_{ij})}{N^2}, \quad
        \bar d_{ij} = \frac{g_{ij}}{\mu}
            - \frac{\sum_{kl} g_{kl}\, d_{kl}}{\mu^2\, N(N-1)}\ (i \ne j), \quad
        \frac{\partial L}{\partial s_i}
            = \sum_{j \ne i} (\bar d_{ij} + \bar d_{ji})\, [d^2_{ij} \ge 10^{-12}]\,
              \frac{s_i - s_j}{d_{ij}}

    :math:`\psi^T` is the same construction on the teacher's features, normalised by the
    teacher's own mean distance. The means run over all :math:`N^2` entries, the zero
    diagonal included, and :math:`\mu` over the non-zero entries, which after the clamp are
    exactly the :math:`N(N-1)` off-diagonal ones. RepDistiller weights this term by
    :math:`w_d = 25` (the authors' README uses 1 with angle 2).

    Degenerate inputs, as the reference code behaves:

    * duplicate rows (:math:`d^2_{ij} < 10^{-12}`) get :math:`d_{ij} = 10^{-6}` and no gradient
      through that pair (the clamp); all rows equal gives :math:`\psi = 1` off the diagonal and
      a zero gradient: a stationary point, not a NaN;
    * N = 1 has no pair at all: the reference divides 0 by 0 (NaN); minikd raises ValueError.

    Parameters
    ----------
    s : array_like of shape (N, F_s)
        Student features, N >= 2.
    t : array_like of shape (N, F_t)
        Teacher features.

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
    s_in = s
    s, t = _pair(s, t, func, min_rows=2)
    n = s.shape[0]
    m = n * (n - 1)
    d_t, _ = _pdist(t)
    psi_t = d_t / (d_t.sum() / m)  # (N, N)
    d, active = _pdist(s)  # (N, N)
    mu = d.sum() / m
    psi = d / mu
    value, slope = _smooth_l1(psi - psi_t)  # (N, N)
    loss = float(np.mean(value, dtype=np.float64))
    g = slope / (n * n)  # (N, N)
    dd = g / mu - np.sum(g * d) / (mu * mu * m)  # (N, N)
    # d d_ij / d s_i = (s_i - s_j) / d_ij on active pairs; clamped pairs pass nothing.
    a = np.divide(dd, d, out=np.zeros_like(dd), where=active)  # (N, N)
    a = a + a.T
    grad = a.sum(axis=1)[:, None] * s - a @ s  # (N, F_s)
    return LossGrad(loss, grad.reshape(np.shape(s_in)))


# ---------------------------------------------------------------------------------------------
# RKD angle


def _unit_differences(e):
    """``u[i, j] = normalize(e_j - e_i)`` (F.normalize, eps 1e-12) and the norms, (N, N, F)."""
    return l2_normalize(e[None, :, :] - e[:, None, :])


def rkd_angle_loss(s, t):
    r"""RKD angle loss (Park et al. 2019, §3.2.2, eq. 6-7), RepDistiller/lenscloth convention.

    .. math::

        u_{ij} = \frac{s_j - s_i}{\max(\|s_j - s_i\|, \epsilon)}, \quad
        \psi_{ijk} = \langle u_{ij}, u_{ik}\rangle, \quad
        L = \frac{1}{N^3}\sum_{i,j,k} \ell_\delta(\psi_{ijk} - \psi^T_{ijk})

        g_{ijk} = \frac{\ell_\delta'(\psi_{ijk} - \psi^T_{ijk})}{N^3}, \quad
        \bar u_{ij} = \sum_k (g_{ijk} + g_{ikj})\, u_{ik} = 2\sum_k g_{ijk}\, u_{ik}, \quad
        \bar v_{ij} = \text{normalize-vjp}(\bar u_{ij}), \quad
        \frac{\partial L}{\partial s_m} = \sum_i \bar v_{im} - \sum_j \bar v_{mj}

    with :math:`\epsilon = 10^{-12}` (``F.normalize``) and :math:`\ell_\delta` the smooth-L1 of
    :func:`rkd_distance_loss`. The mean runs over all :math:`N^3` triples; a degenerate triple
    (j = i or k = i, or a duplicate row) has :math:`u = 0` and :math:`\psi = 0` on that side.
    RepDistiller weights this term by :math:`w_a = 50`. Memory is :math:`O(N^3)`: keep
    batches to a few hundred rows.

    Degenerate inputs, as the reference code behaves: N = 1 and N = 2 give loss 0 and zero
    gradient (every angle is 0 or 1 on both sides). **Duplicate student rows** give
    :math:`u_{ij} = 0` whose ``normalize`` Jacobian is :math:`I/\epsilon`: the gradient is finite
    but of order :math:`10^{12}` whenever the teacher's angles differ, exactly as PyTorch
    computes it. The direction of a vanishing difference is undefined, and near-duplicates
    (:math:`\|s_i - s_j\|` tiny but above :math:`\epsilon`) already have gradients of order
    :math:`1/\|s_i - s_j\|`; deduplicate batches (or use dropout-free features) if that bites.

    Parameters
    ----------
    s : array_like of shape (N, F_s)
        Student features.
    t : array_like of shape (N, F_t)
        Teacher features.

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
    s_in = s
    s, t = _pair(s, t, func)
    n = s.shape[0]
    u_t, _ = _unit_differences(t)  # (N, N, F_t)
    psi_t = u_t @ u_t.transpose(0, 2, 1)  # (N, N, N)
    u, norm = _unit_differences(s)  # (N, N, F_s), (N, N, 1)
    psi = u @ u.transpose(0, 2, 1)  # (N, N, N)
    value, slope = _smooth_l1(psi - psi_t)
    loss = float(np.mean(value, dtype=np.float64))
    # psi_ijk = <u_ij, u_ik> is symmetric in (j, k), and so is psi_t: g_ijk = g_ikj (up to the
    # matmul's round-off), so g + g^T of the formula is 2 g, folded in here to save an N^3 pass.
    g2 = slope * (2.0 / n ** 3)  # (N, N, N): 2 g
    du = g2 @ u  # (N, N, F_s)
    dv = l2_normalize_vjp(du, u, norm)  # (N, N, F_s): d/d(s_j - s_i)
    grad = dv.sum(axis=0) - dv.sum(axis=1)  # (N, F_s)
    return LossGrad(loss, grad.reshape(np.shape(s_in)))


# ---------------------------------------------------------------------------------------------
# Similarity-preserving


def sp_loss(s, t):
    r"""Similarity-preserving KD (Tung & Mori 2019, §3, eq. 1-4), RepDistiller convention.

    .. math::

        G = s s^\top, \quad
        \hat G_i = \frac{G_i}{\max(\|G_i\|_2, \epsilon)}, \quad
        L = \frac{1}{N^2}\|\hat G^T - \hat G\|_F^2

        \bar{\hat G} = \frac{2}{N^2}(\hat G - \hat G^T), \quad
        \bar G_i = \text{normalize-vjp}(\bar{\hat G}_i), \quad
        \frac{\partial L}{\partial s} = (\bar G + \bar G^\top)\, s

    :math:`G_i` is row i of the (N, N) Gram matrix and :math:`\epsilon = 10^{-12}`
    (``F.normalize``). Invariant to a global scale of either side, not to per-sample scales.
    RepDistiller and mdistiller weight it by 3000 (torchdistill's sample config by 1).

    Degenerate inputs, as the reference code behaves: a zero student row has a zero Gram row,
    which ``normalize`` maps to 0 with Jacobian :math:`I/\epsilon`, so that row's gradient is
    finite but of order :math:`10^{12}` unless the teacher's row is zero too. N = 1 gives loss 0
    (both normalised Grams are [[1]]), or 1 with zero gradient for a zero student row.

    Parameters
    ----------
    s : array_like of shape (N, F_s)
        Student features.
    t : array_like of shape (N, F_t)
        Teacher features.

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
    func = "sp_loss"
    s_in = s
    s, t = _pair(s, t, func)
    n = s.shape[0]
    g_t, _ = l2_normalize(t @ t.T)  # (N, N)
    g_hat, norm = l2_normalize(s @ s.T)  # (N, N), (N, 1)
    diff = g_hat - g_t
    loss = float(np.sum(diff * diff, dtype=np.float64) / (n * n))
    dg = l2_normalize_vjp(diff * diff.dtype.type(2.0 / (n * n)), g_hat, norm)  # (N, N)
    grad = (dg + dg.T) @ s  # (N, F_s)
    return LossGrad(loss, grad.reshape(np.shape(s_in)))


# ---------------------------------------------------------------------------------------------
# PKT


def _pkt_unit(x):
    """``x / (||x|| + eps)`` per row (the PKT author code) and the row norms."""
    norm = np.sqrt(np.einsum("nf,nf->n", x, x))[:, None]  # (N, 1)
    return x / (norm + PKT_EPS), norm


def _pkt_probs(x_hat):
    """Cosine kernel mapped to [0, 1] and row-normalised: the conditional probabilities."""
    k = (x_hat @ x_hat.T + 1.0) / 2.0  # (N, N)
    rows = k.sum(axis=1, keepdims=True)  # (N, 1), >= 1/2 since k_ii >= 1/2
    return k / rows, rows


def pkt_loss(s, t):
    r"""Probabilistic knowledge transfer (Passalis & Tefas 2018, §3, eq. 7-10), author code.

    .. math::

        \hat x_i = \frac{x_i}{\|x_i\| + \epsilon}, \quad
        K_{ij} = \tfrac12(\hat x_i \!\cdot\! \hat x_j + 1), \quad
        P_{ij} = \frac{K_{ij}}{\sum_k K_{ik}}, \quad
        L = \frac{1}{N^2}\sum_{i,j} P^T_{ij}\log\frac{P^T_{ij} + \epsilon}{P_{ij} + \epsilon}

        \bar P_{ij} = -\frac{P^T_{ij}}{N^2 (P_{ij} + \epsilon)}, \quad
        \bar K_{ij} = \frac{\bar P_{ij} - \sum_k \bar P_{ik} P_{ik}}{\sum_k K_{ik}}, \quad
        \bar{\hat s} = \tfrac12(\bar K + \bar K^\top)\hat s, \quad
        \frac{\partial L}{\partial s_i} = \frac{\bar{\hat s}_i}{\|s_i\| + \epsilon}
            - \frac{s_i\,\langle s_i, \bar{\hat s}_i\rangle}{\|s_i\|(\|s_i\| + \epsilon)^2}

    with :math:`\epsilon = 10^{-7}` throughout, and :math:`\hat x`, :math:`K`, :math:`P` built the
    same way for the teacher. The mean runs over all :math:`N^2` entries (not a row sum over N),
    as in passalis/probabilistic_kt, RepDistiller, mdistiller and torchdistill, which weight it by
    30000. The author code's NaN→0 guard on :math:`\hat x` never fires for finite input
    (:math:`\|x\| + \epsilon > 0`). Invariant (up to :math:`\epsilon/\|x_i\|`) to a positive
    scale of each row.

    Degenerate inputs: a zero student row has :math:`\hat s_i = 0`; the last term of the gradient
    is 0/0 there and its limit is 0, so minikd returns the finite
    :math:`\bar{\hat s}_i / \epsilon`. (PyTorch's autograd returns NaN for that row: the backward
    of ``sqrt`` at 0 is 0/0.) N = 1 gives loss 0 and a zero gradient.

    Parameters
    ----------
    s : array_like of shape (N, F_s)
        Student features.
    t : array_like of shape (N, F_t)
        Teacher features.

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
    func = "pkt_loss"
    s_in = s
    s, t = _pair(s, t, func)
    n = s.shape[0]
    p_t, _ = _pkt_probs(_pkt_unit(t)[0])  # (N, N)
    s_hat, norm = _pkt_unit(s)  # (N, F_s), (N, 1)
    p_s, rows = _pkt_probs(s_hat)  # (N, N)
    loss = float(np.mean(p_t * np.log((p_t + PKT_EPS) / (p_s + PKT_EPS)), dtype=np.float64))
    dp = -p_t / ((p_s + PKT_EPS) * (n * n))  # (N, N)
    dk = (dp - np.sum(dp * p_s, axis=1, keepdims=True)) / rows  # (N, N)
    ds_hat = 0.5 * ((dk + dk.T) @ s_hat)  # (N, F_s)
    # The second term is s (s . ds_hat) / (|s| (|s| + eps)^2); its limit at s = 0 is 0.
    radial = np.einsum("nf,nf->n", s, ds_hat)[:, None]  # (N, 1)
    # divided in two steps: |s|^3 overflows for |s| above the cube root of the largest float
    coef = np.divide(radial, norm, out=np.zeros_like(radial), where=norm > 0)
    coef /= (norm + PKT_EPS) ** 2
    grad = ds_hat / (norm + PKT_EPS) - coef * s  # (N, F_s)
    return LossGrad(loss, grad.reshape(np.shape(s_in)))
