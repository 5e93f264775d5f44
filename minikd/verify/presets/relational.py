r"""The relational-KD presets: Park et al. (2019) distance + angle, as five libraries weight it.

Each kernel takes checked features ``(student_features, teacher_features)``: float arrays of one
dtype and shape (N, F_s) and (N, F_t), N >= 2, and returns a :class:`minikd.LossGrad` of

.. math::

    L = w_d\, L_D + w_a\, L_A, \qquad
    \frac{\partial L}{\partial s} = w_d \frac{\partial L_D}{\partial s}
        + w_a \frac{\partial L_A}{\partial s}

with :math:`L_D`, :math:`L_A` of :func:`minikd.rkd_distance_loss` and
:func:`minikd.rkd_angle_loss` (eq. 4-7); KD_Lib's distance term has its own epsilons.
:data:`RKD_PRESETS` records each one as a :class:`Convention`.
"""

from __future__ import annotations

import numpy as np

from ...losses.reduction import LossGrad
from ...losses.relations import pairwise_distances, rkd_angle_loss, rkd_distance_loss, smooth_l1
from .convention import KD_LIB, MDISTILLER, REPDISTILLER, TORCHDISTILL, Convention, by_name

__all__ = ["KD_LIB_RKD_CLAMP", "KD_LIB_RKD_MEAN_EPS", "RKD_PRESETS"]

KD_LIB_RKD_CLAMP = 1e-10  # KD_Lib pairwaise_distance: result.clamp(min=1e-10)
KD_LIB_RKD_MEAN_EPS = 1e-7  # KD_Lib RKDDistanceLoss: t / (t_mean + 1e-7)


def weighted(w_d, distance, w_a, angle):
    """``w_d * distance + w_a * angle`` of two LossGrads."""
    return LossGrad(w_d * distance.loss + w_a * angle.loss, w_d * distance.grad + w_a * angle.grad)


def rkd_25_50(student_features, teacher_features):
    """RepDistiller / mdistiller ``RKDLoss``: distance weight 25, angle weight 50.

    RepDistiller ``distiller_zoo/RKD.py`` (mdistiller ``rkd_loss``: the same, with
    ``distance_weight=25, angle_weight=50, eps=1e-12`` from its config)::

        def __init__(self, w_d=25, w_a=50):
        loss_d = F.smooth_l1_loss(d, t_d)
        loss_a = F.smooth_l1_loss(s_angle, t_angle)
        loss = self.w_d * loss_d + self.w_a * loss_a
    """
    return weighted(25.0, rkd_distance_loss(student_features, teacher_features),
                    50.0, rkd_angle_loss(student_features, teacher_features))


def rkd_1_2(student_features, teacher_features):
    """The paper's ratio, 1 : 2: lenscloth/RKD's README and torchdistill's sample config.

    lenscloth/RKD ``README.md`` (``--dist_ratio 1 --angle_ratio 2``); torchdistill
    ``configs/sample/ilsvrc2012/rkd/resnet18_from_resnet34.yaml`` and ``RKDLoss.forward``::

        key: 'RKDLoss'
        kwargs: {dist_factor: 1.0, angle_factor: 2.0, reduction: 'mean'}
        return self.dist_factor * rkd_distance_loss + self.angle_factor * rkd_angle_loss
    """
    return weighted(1.0, rkd_distance_loss(student_features, teacher_features),
                    2.0, rkd_angle_loss(student_features, teacher_features))


def rkd_distance_kd_lib(student_features, teacher_features):
    r"""KD_Lib ``RKDDistanceLoss``: RKD distance with clamp 1e-10 and divisor ``mean + 1e-7``.

    KD_Lib ``KD_Lib/KD/vision/RKD/loss_metric.py``::

        result = output_squared.unsqueeze(0) + output_squared.unsqueeze(1) - 2 * product
        result = result.clamp(min=1e-10)
        result = result.sqrt()
        result[range(len(output)), range(len(output))] = 0
        s = pairwaise_distance(student)
        s_mean = s[s > 0].mean()
        s = s / (s_mean + 1e-7)
        return F.smooth_l1_loss(s, t)

    With the N(N−1) off-diagonal distances :math:`d_{ij}` (all above the clamp's
    :math:`10^{-5}`, so ``s[s > 0]`` is every one of them), :math:`\mu' = \bar d + 10^{-7}`,
    :math:`\psi_s = d / \mu'` (the teacher's :math:`\psi_t` likewise), and
    :math:`g_{ij} = \ell'_\delta(\psi_{s,ij} - \psi_{t,ij}) / N^2`
    the smooth-L1 slope over the :math:`N^2` entries:

    .. math::

        L = \frac{1}{N^2} \sum_{ij} \ell_\delta(\psi_{s,ij} - \psi_{t,ij}), \qquad
        \bar d_{ij} = \frac{g_{ij}}{\mu'} - \frac{\sum_{kl} g_{kl} d_{kl}}{\mu'^2 N(N-1)},

        \frac{\partial L}{\partial s_i} = \sum_{j \ne i} (\bar d_{ij} + \bar d_{ji})
            [d^2_{ij} \ge 10^{-10}] \frac{s_i - s_j}{d_{ij}}
    """
    s = student_features
    n = s.shape[0]
    m = n * (n - 1)  # the off-diagonal entries
    d_t, _ = pairwise_distances(teacher_features, clamp=KD_LIB_RKD_CLAMP)  # (N, N)
    psi_t = d_t / (d_t.sum() / m + KD_LIB_RKD_MEAN_EPS)  # (N, N)
    d, active = pairwise_distances(s, clamp=KD_LIB_RKD_CLAMP)  # (N, N)
    mu = d.sum() / m + KD_LIB_RKD_MEAN_EPS
    value, slope = smooth_l1(d / mu - psi_t)  # (N, N)
    g = slope / (n * n)  # (N, N)
    dd = g / mu - np.sum(g * d) / (mu * mu * m)  # d L / d d_ij, (N, N)
    a = np.divide(dd, d, out=np.zeros_like(dd), where=active)  # (N, N)
    a = a + a.T
    grad = a.sum(axis=1)[:, None] * s - a @ s  # (N, F_s)
    return LossGrad(float(np.mean(value, dtype=np.float64)), grad)


def rkd_kd_lib(student_features, teacher_features):
    """KD_Lib ``RKDLoss``: weights 0.5 and 0.5, and its own distance epsilons.

    KD_Lib ``KD_Lib/KD/vision/RKD/loss_metric.py``::

        def __init__(self, dist_ratio=0.5, angle_ratio=0.5, normalize=True):
        loss = angle_loss(teacher, student, self.normalize) * self.angle_ratio
        loss += distance_loss(teacher, student) * self.dist_ratio
    """
    return weighted(0.5, rkd_distance_kd_lib(student_features, teacher_features),
                    0.5, rkd_angle_loss(student_features, teacher_features))


RKD_PRESETS = by_name(
    Convention(
        "rkd", "repdistiller", "RepDistiller RKDLoss", f"{REPDISTILLER} distiller_zoo/RKD.py",
        "self.w_d * F.smooth_l1_loss(d, t_d) + self.w_a * F.smooth_l1_loss(s_angle, t_angle)",
        "w_d = 25, w_a = 50 (inside the loss); beta = 1 in the script",
        "pdist clamp 1e-12, each side divided by its mean non-zero distance.", rkd_25_50),
    Convention(
        "rkd", "mdistiller", "mdistiller RKD / rkd_loss",
        f"{MDISTILLER} mdistiller/distillers/RKD.py",
        "distance_weight * loss_d + angle_weight * loss_a (cfg: 25, 50, eps 1e-12)",
        "DISTANCE_WEIGHT = 25, ANGLE_WEIGHT = 50",
        "Same numbers as RepDistiller.", rkd_25_50),
    Convention(
        "rkd", "rkd_author", "lenscloth/RKD (the paper's code)",
        "lenscloth/RKD@0a6c3c0c metric/loss.py, README.md",
        "dist_ratio * RkdDistance() + angle_ratio * RKdAngle(), README: --dist_ratio 1 "
        "--angle_ratio 2",
        "dist_ratio = 1, angle_ratio = 2",
        "The paper's 1:2 ratio, 25 times smaller than RepDistiller's.", rkd_1_2),
    Convention(
        "rkd", "torchdistill", "torchdistill RKDLoss",
        f"{TORCHDISTILL} torchdistill/losses/mid_level.py, "
        "configs/sample/ilsvrc2012/rkd/resnet18_from_resnet34.yaml",
        "self.dist_factor * rkd_distance_loss + self.angle_factor * rkd_angle_loss",
        "dist_factor = 1.0, angle_factor = 2.0 (sample config)",
        "The paper's ratio, as a config.", rkd_1_2),
    Convention(
        "rkd", "kd_lib", "KD_Lib RKDLoss", f"{KD_LIB} KD_Lib/KD/vision/RKD/loss_metric.py",
        "angle_loss(t, s) * 0.5 + distance_loss(t, s) * 0.5; pdist clamp(min=1e-10), "
        "d / (mean + 1e-7)",
        "dist_ratio = 0.5, angle_ratio = 0.5",
        "Different eps: clamp 1e-10 and mean + 1e-7 in the distance term.", rkd_kd_lib),
)
"""dict: ``RKD_PRESETS[name] -> Convention`` for :func:`minikd.rkd_loss_as`."""
