"""The attention-transfer and RKD presets of :mod:`minikd.conventions` (private).

Each kernel gets validated float arrays (student, teacher) and returns a :class:`minikd.LossGrad`;
its docstring quotes the library's code. ``AT_PRESETS`` and ``RKD_PRESETS`` map each name to
``(kernel, (library, source, formula, weights, note))``.
"""

from __future__ import annotations

import numpy as np

from .._validation import param_error
from ..losses.features import attention_transfer_loss
from ..losses.reduction import LossGrad
from ..losses.relations import pairwise_distances, rkd_angle_loss, rkd_distance_loss, smooth_l1
from .kd_presets import KL, MD, RD, TD


def _at_code(s, t):
    """RepDistiller / mdistiller / attention-transfer ``at_loss``; torchdistill ``mode='code'``.

    RepDistiller ``distiller_zoo/AT.py`` (= szagoruyko/attention-transfer ``utils.py``)::

        def at(self, f):
            return F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))
        def at_loss(self, f_s, f_t):
            return (self.at(f_s) - self.at(f_t)).pow(2).mean()
    """
    return attention_transfer_loss(s, t, p=2, mode="code")


def _at_paper(s, t):
    """torchdistill ``ATLoss(mode='paper')``: eq. 2 of the paper, a non-squared norm.

    torchdistill ``torchdistill/losses/mid_level.py``::

        def attention_transfer_paper(feature_map):
            return normalize(feature_map.pow(2).sum(1).flatten(1))
        at_loss += torch.norm(at_student - at_teacher, dim=1).sum()  # then / batch_size
    """
    return attention_transfer_loss(s, t, p=2, mode="paper")


def _at_kd_lib(s, t):
    """KD_Lib ``ATLoss`` (``norm_type=2``): the whole map normalised, **no** channel reduction.

    KD_Lib ``KD_Lib/KD/vision/attention/loss_metric.py`` (as read at the commit in
    kd-anchors.md)::

        def single_at_loss(self, activation):
            return F.normalize(activation.pow(self.p).view(activation.size(0), -1))
        loss += (xS - xT).pow(self.p).mean()

    That is the "code" loss on the maps seen as one channel of C·H rows: reshaping
    (N, C, H, W) to (N, 1, C·H, W) makes the channel mean the identity, so it is computed by
    :func:`minikd.attention_transfer_loss` on the reshaped maps. Student and teacher need the
    same channel count. (An earlier KD_Lib commit, ``8d248234``, had ``.mean(1)`` as well,
    which is "repdistiller".)
    """
    if s.shape[1:] != t.shape[1:]:
        raise param_error("teacher_maps", "at_loss_as", f"an array of shape {s.shape} ('kd_lib' "
                          "flattens channels, so the channel counts must match)",
                          f"shape {t.shape}")
    flat = (s.shape[0], 1, -1) + s.shape[3:]
    loss, grad = attention_transfer_loss(s.reshape(flat), t.reshape(flat), p=2, mode="code")
    return LossGrad(loss, grad.reshape(s.shape))


AT_PRESETS = {
    "repdistiller": (_at_code, (
        "RepDistiller Attention", f"{RD} distiller_zoo/AT.py",
        "(F.normalize(f_s.pow(2).mean(1).view(N, -1)) - F.normalize(f_t.pow(2).mean(1)"
        ".view(N, -1))).pow(2).mean()",
        "beta = 1000 outside the loss (scripts/run_cifar_distill.sh)",
        "Channel mean of f², L2-normalised per sample, mean of squared differences.")),
    "mdistiller": (_at_code, (
        "mdistiller AT / at_loss", f"{MD} mdistiller/distillers/AT.py",
        "(at(f_s) - at(f_t)).pow(2).mean(), at(f) = F.normalize(f.pow(p).mean(1).view(N, -1))",
        "FEAT_WEIGHT = 1000 outside the loss",
        "Same numbers as RepDistiller.")),
    "torchdistill_code": (_at_code, (
        "torchdistill ATLoss(mode='code')",
        f"{TD} torchdistill/losses/mid_level.py",
        "(normalize(f_s.pow(2).mean(1).flatten(1)) - normalize(f_t...)).pow(2).mean()",
        "factor = 1000 in the sample config",
        "Same numbers as RepDistiller (no pooling to the smaller map).")),
    "torchdistill_paper": (_at_paper, (
        "torchdistill ATLoss(mode='paper')",
        f"{TD} torchdistill/losses/mid_level.py",
        "sum_b ||normalize(f_s.pow(2).sum(1).flatten(1)) - normalize(...)||_2 / N",
        "factor set by the config",
        "The paper's eq. 2: non-squared L2 distance per sample, mean over the batch.")),
    "kd_lib": (_at_kd_lib, (
        "KD_Lib ATLoss", f"{KL} KD_Lib/KD/vision/attention/loss_metric.py",
        "(F.normalize(f_s.pow(2).view(N, -1)) - F.normalize(f_t.pow(2).view(N, -1)))"
        ".pow(2).mean()",
        "Attention: (1 - w) * T * CE(z_s / T, y) + w * ATLoss",
        "No channel reduction: C_s must equal C_t; the mean runs over C·H·W.")),
}




KD_LIB_RKD_CLAMP = 1e-10  # KD_Lib pairwaise_distance: result.clamp(min=1e-10)
KD_LIB_RKD_MEAN_EPS = 1e-7  # KD_Lib RKDDistanceLoss: t / (t_mean + 1e-7)


def _rkd_distance_kd_lib(s, t):
    r"""KD_Lib ``RKDDistanceLoss``: RKD distance with clamp 1e-10 and divisor ``mean + 1e-7``.

    KD_Lib ``KD_Lib/KD/vision/RKD/loss_metric.py``::

        result = (output_squared.unsqueeze(0) + output_squared.unsqueeze(1) - 2 * product)
        result = result.clamp(min=1e-10).sqrt(); result[range(n), range(n)] = 0
        s_mean = s[s > 0].mean(); s = s / (s_mean + 1e-7)
        return F.smooth_l1_loss(s, t)

    A thin formula beside :func:`minikd.rkd_distance_loss` (whose clamp is 1e-12 and divisor
    the plain mean): with :math:`\mu' = \mu + 10^{-7}`, :math:`\psi = d / \mu'` and

    .. math::

        \bar d_{ij} = \frac{g_{ij}}{\mu'} - \frac{\sum_{kl} g_{kl} d_{kl}}{\mu'^2 N(N-1)}, \qquad
        \frac{\partial L}{\partial s_i} = \sum_{j \ne i} (\bar d_{ij} + \bar d_{ji})
            [d^2_{ij} \ge 10^{-10}] \frac{s_i - s_j}{d_{ij}}

    where :math:`g_{ij} = \ell'_\delta(\psi_{ij} - \psi^T_{ij}) / N^2`.
    """
    n = s.shape[0]
    m = n * (n - 1)
    d_t, _ = pairwise_distances(t, clamp=KD_LIB_RKD_CLAMP)
    psi_t = d_t / (d_t.sum() / m + KD_LIB_RKD_MEAN_EPS)  # (N, N)
    d, active = pairwise_distances(s, clamp=KD_LIB_RKD_CLAMP)
    mu = d.sum() / m + KD_LIB_RKD_MEAN_EPS
    value, slope = smooth_l1(d / mu - psi_t)  # (N, N)
    g = slope / (n * n)
    dd = g / mu - np.sum(g * d) / (mu * mu * m)  # (N, N)
    a = np.divide(dd, d, out=np.zeros_like(dd), where=active)
    a = a + a.T
    grad = a.sum(axis=1)[:, None] * s - a @ s  # (N, F_s)
    return LossGrad(float(np.mean(value, dtype=np.float64)), grad)


def _rkd_weighted(w_d, w_a, distance=rkd_distance_loss):
    def kernel(s, t):
        d_loss, d_grad = distance(s, t)
        a_loss, a_grad = rkd_angle_loss(s, t)
        return LossGrad(w_d * d_loss + w_a * a_loss, w_d * d_grad + w_a * a_grad)
    return kernel


RKD_PRESETS = {
    "repdistiller": (_rkd_weighted(25.0, 50.0), (
        "RepDistiller RKDLoss", f"{RD} distiller_zoo/RKD.py",
        "self.w_d * F.smooth_l1_loss(d, t_d) + self.w_a * F.smooth_l1_loss(s_angle, t_angle)",
        "w_d = 25, w_a = 50 (inside the loss); beta = 1 in the script",
        "pdist clamp 1e-12, each side divided by its mean non-zero distance.")),
    "mdistiller": (_rkd_weighted(25.0, 50.0), (
        "mdistiller RKD", f"{MD} mdistiller/distillers/RKD.py",
        "DISTANCE_WEIGHT * loss_d + ANGLE_WEIGHT * loss_a (cfg: 25, 50, eps 1e-12)",
        "DISTANCE_WEIGHT = 25, ANGLE_WEIGHT = 50",
        "Same numbers as RepDistiller.")),
    "rkd_author": (_rkd_weighted(1.0, 2.0), (
        "lenscloth/RKD (the paper's code)",
        "lenscloth/RKD@0a6c3c0c metric/loss.py, README.md",
        "dist_ratio * RkdDistance() + angle_ratio * RKdAngle(), README: --dist_ratio 1 "
        "--angle_ratio 2",
        "dist_ratio = 1, angle_ratio = 2",
        "The paper's 1:2 ratio, 25 times smaller than RepDistiller's.")),
    "torchdistill": (_rkd_weighted(1.0, 2.0), (
        "torchdistill RelationalKDLoss",
        f"{TD} torchdistill/losses/mid_level.py, configs/sample/ilsvrc2012",
        "dist_factor * smooth_l1(d, t_d) + angle_factor * smooth_l1(s_angle, t_angle)",
        "dist_factor = 1.0, angle_factor = 2.0 (sample config)",
        "The paper's ratio, as a config.")),
    "kd_lib": (_rkd_weighted(0.5, 0.5, _rkd_distance_kd_lib), (
        "KD_Lib RKDLoss", f"{KL} KD_Lib/KD/vision/RKD/loss_metric.py",
        "angle_loss(t, s) * 0.5 + distance_loss(t, s) * 0.5; pdist clamp(min=1e-10), "
        "d / (mean + 1e-7)",
        "dist_ratio = 0.5, angle_ratio = 0.5",
        "Different eps: clamp 1e-10 and mean + 1e-7 in the distance term.")),
}


