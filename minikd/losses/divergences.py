r"""Token divergences per position: each position's value and gradient, formula by formula.

Each function takes student and teacher logits of shape (..., V) and the temperature T, turns
every position into :math:`p_s = \mathrm{softmax}(z_s / T)` and
:math:`p_t = \mathrm{softmax}(z_t / T)` with :func:`~minikd.losses.softmax.log_softmax_kernel`,
and returns the divergence of every position, shape (...,), and its gradient with respect to the
student logits, shape (..., V). The teacher is a constant. The forward KL is
:func:`minikd.losses.response_kernels.kl_per_position`, the kernel ``kd_loss`` uses.

Every gradient comes from one identity. With :math:`g = \partial \ell / \partial p_s` (a constant
added to every entry of g changes nothing, so the ``+1`` of :math:`\partial (p \log p) / \partial p`
is dropped), the softmax's Jacobian gives

.. math::

    \frac{\partial \ell}{\partial z_{s,v}}
        = \frac{1}{T}\, p_{s,v} \Big(g_v - \sum_u p_{s,u}\, g_u\Big).

A mixture m of the two distributions is formed in log space, ``np.logaddexp`` of the weighted
log-probabilities, so log m is finite even where both probabilities underflow; a ratio p / m is
``exp(log p - log m)``, at most 1 / weight. Logit gaps of 1e4 at T = 0.05 stay finite.

No validation here: the public functions of :mod:`minikd.losses.tokens` check their arguments
and then call these through their kernels. Nothing here modifies its inputs.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .response_kernels import kl_per_position
from .softmax import log_softmax_kernel

__all__ = [
    "DIVERGENCES",
    "JSD_CONVENTIONS",
    "divergence_per_position",
    "jsd_gkd_per_position",
    "jsd_trl_legacy_per_position",
    "jsd_trl_logspace_per_position",
    "jsd_trl_per_position",
    "reverse_kl_per_position",
    "skew_kl_per_position",
    "skew_reverse_kl_per_position",
]

DIVERGENCES = ("forward_kl", "reverse_kl", "generalized_jsd", "skew_kl", "skew_reverse_kl")
JSD_CONVENTIONS = ("trl", "gkd", "trl_legacy", "trl_logspace")


def _through_softmax(p_s, g, T):
    """d loss / d z_s from g = d loss / d p_s, through p_s = softmax(z_s / T). (..., V)."""
    return p_s * (g - (p_s * g).sum(axis=-1, keepdims=True)) / T


def reverse_kl_per_position(student_logits, teacher_logits, temperature):
    """KL(p_s || p_t) per position and its gradient p_s (log p_s - log p_t - KL) / T."""
    T = temperature
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s = np.exp(log_p_s)
    rkl = (p_s * (log_p_s - log_p_t)).sum(axis=-1)  # (...,)
    return rkl, p_s * (log_p_s - log_p_t - rkl[..., None]) / T  # g = log p_s - log p_t


def jsd_gkd_per_position(student_logits, teacher_logits, temperature, beta):
    """GKD Eq. 1: beta KL(p_t || m) + (1 - beta) KL(p_s || m), m = beta p_t + (1 - beta) p_s.

    g = (1 - beta)(log p_s - log m): the terms through m cancel, since
    beta p_t + (1 - beta) p_s = m. At beta = 0 or 1, m is p_s or p_t and the loss is 0.
    """
    T = temperature
    if beta == 0.0 or beta == 1.0:
        return np.zeros(student_logits.shape[:-1], student_logits.dtype), np.zeros_like(
            student_logits)
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    log_m = np.logaddexp(math.log(beta) + log_p_t, math.log1p(-beta) + log_p_s)  # (..., V)
    kl_t = (p_t * (log_p_t - log_m)).sum(axis=-1)  # (...,) KL(p_t || m)
    kl_s = (p_s * (log_p_s - log_m)).sum(axis=-1)  # (...,) KL(p_s || m)
    jsd = beta * kl_t + (1 - beta) * kl_s
    return jsd, (1 - beta) * p_s * (log_p_s - log_m - kl_s[..., None]) / T


def jsd_trl_per_position(student_logits, teacher_logits, temperature, beta):
    """TRL since PR #3043: Eq. 1 for 0 < beta < 1, the unscaled forward KL at beta = 0 and the
    unscaled reverse KL at beta = 1 (explicit branches in ``generalized_jsd_loss``)."""
    if beta == 0.0:
        return kl_per_position(student_logits, teacher_logits, temperature)
    if beta == 1.0:
        return reverse_kl_per_position(student_logits, teacher_logits, temperature)
    return jsd_gkd_per_position(student_logits, teacher_logits, temperature, beta)


def jsd_trl_legacy_per_position(student_logits, teacher_logits, temperature, beta):
    """TRL from PR #2204 to PR #3043: beta KL(p_t || m) + (1 - beta) KL(p_s || m), with
    m = beta p_s + (1 - beta) p_t.

    The mixture weighs the student by beta, the KLs weigh the teacher by beta, so the terms
    through m no longer cancel: g = (1 - beta)(log p_s - log m) - beta (beta p_t + (1 - beta) p_s)
    / m. Reverse KL at beta = 0 (m = p_t), forward KL at beta = 1 (m = p_s).
    """
    T = temperature
    if beta == 0.0:
        return reverse_kl_per_position(student_logits, teacher_logits, T)
    if beta == 1.0:
        return kl_per_position(student_logits, teacher_logits, T)
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    log_m = np.logaddexp(math.log(beta) + log_p_s, math.log1p(-beta) + log_p_t)  # (..., V)
    kl_t = (p_t * (log_p_t - log_m)).sum(axis=-1)  # (...,) KL(p_t || m)
    kl_s = (p_s * (log_p_s - log_m)).sum(axis=-1)  # (...,) KL(p_s || m)
    jsd = beta * kl_t + (1 - beta) * kl_s
    ratio_t, ratio_s = np.exp(log_p_t - log_m), np.exp(log_p_s - log_m)  # p / m <= 1 / weight
    g = (1 - beta) * (log_p_s - log_m) - beta * (beta * ratio_t + (1 - beta) * ratio_s)
    return jsd, _through_softmax(p_s, g, T)


def jsd_trl_logspace_per_position(student_logits, teacher_logits, temperature, beta):
    """The first TRL GKDTrainer (PR #1814): log m = beta log p_s + (1 - beta) log p_t, unnormalised,
    then beta KL(p_t || m) + (1 - beta) KL(p_s || m).

    Since log p_t - log m = beta (log p_t - log p_s) and log p_s - log m = (1 - beta)(log p_s -
    log p_t), that is beta² KL(p_t || p_s) + (1 - beta)² KL(p_s || p_t), whose gradient is the
    forward KL's and the reverse KL's with those weights.
    """
    T = temperature
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    log_m = beta * log_p_s + (1 - beta) * log_p_t  # (..., V)
    jsd = (beta * (p_t * (log_p_t - log_m)).sum(axis=-1)
           + (1 - beta) * (p_s * (log_p_s - log_m)).sum(axis=-1))  # (...,)
    rkl = (p_s * (log_p_s - log_p_t)).sum(axis=-1)  # (...,) KL(p_s || p_t)
    dfkl = (p_s - p_t) / T  # d KL(p_t || p_s) / d z_s
    drkl = p_s * (log_p_s - log_p_t - rkl[..., None]) / T  # d KL(p_s || p_t) / d z_s
    return jsd, beta**2 * dfkl + (1 - beta) ** 2 * drkl


def skew_kl_per_position(student_logits, teacher_logits, temperature, alpha):
    """DistiLLM's alpha-SKL: KL(p_t || m), m = alpha p_t + (1 - alpha) p_s;
    g = -(1 - alpha) p_t / m.

    Forward KL at alpha = 0. The ratio p_t / m is at most 1 / alpha.
    """
    T = temperature
    if alpha == 0.0:
        return kl_per_position(student_logits, teacher_logits, T)
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s, p_t = np.exp(log_p_s), np.exp(log_p_t)
    log_m = np.logaddexp(math.log(alpha) + log_p_t, math.log1p(-alpha) + log_p_s)  # (..., V)
    skl = (p_t * (log_p_t - log_m)).sum(axis=-1)  # (...,)
    g = -(1 - alpha) * np.exp(log_p_t - log_m)  # (..., V)
    return skl, _through_softmax(p_s, g, T)


def skew_reverse_kl_per_position(student_logits, teacher_logits, temperature, alpha):
    """DistiLLM's alpha-SRKL: KL(p_s || m), m = (1 - alpha) p_t + alpha p_s;
    g = log p_s - log m - alpha p_s / m.

    Reverse KL at alpha = 0. The ratio p_s / m is at most 1 / alpha.
    """
    T = temperature
    if alpha == 0.0:
        return reverse_kl_per_position(student_logits, teacher_logits, T)
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    log_p_t = log_softmax_kernel(teacher_logits / T)  # (..., V)
    p_s = np.exp(log_p_s)
    log_m = np.logaddexp(math.log1p(-alpha) + log_p_t, math.log(alpha) + log_p_s)  # (..., V)
    srkl = (p_s * (log_p_s - log_m)).sum(axis=-1)  # (...,)
    g = log_p_s - log_m - alpha * np.exp(log_p_s - log_m)  # (..., V)
    return srkl, _through_softmax(p_s, g, T)


JSD_PER_POSITION = {"trl": jsd_trl_per_position, "gkd": jsd_gkd_per_position,
                    "trl_legacy": jsd_trl_legacy_per_position,
                    "trl_logspace": jsd_trl_logspace_per_position}


def divergence_per_position(divergence, *, beta=0.5, alpha=0.1, convention="trl"):
    """The per-position function of a named divergence, its weight bound in:
    ``f(student_logits, teacher_logits, temperature) -> (loss (...,), grad (..., V))``."""
    if divergence == "forward_kl":
        return kl_per_position
    if divergence == "reverse_kl":
        return reverse_kl_per_position
    if divergence == "generalized_jsd":
        return functools.partial(JSD_PER_POSITION[convention], beta=beta)
    if divergence == "skew_kl":
        return functools.partial(skew_kl_per_position, alpha=alpha)
    return functools.partial(skew_reverse_kl_per_position, alpha=alpha)
