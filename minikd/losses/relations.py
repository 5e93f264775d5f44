r"""Relation-based distillation: the student copies how the teacher relates the examples.

* :func:`rkd_distance_loss`, :func:`rkd_angle_loss` — Park et al. 2019 (RKD), as RepDistiller
  and the authors' code (lenscloth/RKD) compute them (in :mod:`minikd.losses.rkd`).
* :func:`sp_loss` — similarity-preserving KD (Tung & Mori 2019).
* :func:`pkt_loss` — probabilistic knowledge transfer (Passalis & Tefas 2018).

Inputs: student features (N, F_s) and teacher features (N, F_t); only the N rows must pair up
(trailing axes are flattened, as RepDistiller's ``.view(N, -1)``). Each loss returns
:class:`minikd.LossGrad` with the gradient with respect to the student's features, checks its
arguments once and calls its kernel (``sp_loss_kernel``, ...). Where the gradient is undefined
minikd returns a finite value (docs/derivations/*.md say which), except RKD distance on one row.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_pair
from .normalize import l2_norm, l2_normalize, l2_normalize_vjp
from .reduction import LossGrad
from .relation_checks import NAMES, check_gram_range, check_relation_memory
from .rkd import (  # re-exported: the relation losses in one namespace
    RKD_DIST_EPS,
    pairwise_distances,
    rkd_angle_loss,
    rkd_angle_loss_kernel,
    rkd_distance_loss,
    rkd_distance_loss_kernel,
    smooth_l1,
)

__all__ = ["PKT_EPS", "RKD_DIST_EPS", "pairwise_distances", "pkt_loss", "pkt_loss_kernel",
           "rkd_angle_loss", "rkd_angle_loss_kernel", "rkd_distance_loss",
           "rkd_distance_loss_kernel", "smooth_l1", "sp_loss", "sp_loss_kernel"]

PKT_EPS = 1e-7  # passalis/probabilistic_kt, RepDistiller, mdistiller, torchdistill


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
    check_gram_range(s, t, "sp_loss")  # Gram entries sum F products
    check_relation_memory(s, t, "sp_loss")
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
    check_relation_memory(s, t, "pkt_loss")
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
