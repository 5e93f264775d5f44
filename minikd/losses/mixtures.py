r"""Token losses against a mixture of the two distributions: generalized JSD, skew (reverse) KL.

Each compares the teacher :math:`p_t = \mathrm{softmax}(z_t / T)` and/or the student
:math:`p_s = \mathrm{softmax}(z_s / T)` with a mixture m of the two, per position of logits
(..., V), and reduces like :func:`minikd.forward_kl` (masks, labels, the four reductions, T²).
The per-position formulas are in :mod:`minikd.losses.divergences`; ``docs/token_losses.md``
maps them to TRL's and DistiLLM's code, version by version.
"""

from __future__ import annotations

from .._validation import check_choice, check_fraction, check_unit_interval
from .divergences import (
    JSD_CONVENTIONS,
    JSD_PER_POSITION,
    skew_kl_per_position,
    skew_reverse_kl_per_position,
)
from .reduction import reduce_positions
from .tokens import check_token_args

__all__ = ["generalized_jsd", "skew_kl", "skew_reverse_kl"]


def generalized_jsd_kernel(student_logits, teacher_logits, *, beta=0.5, convention="trl",
                           temperature, mask=None, reduction="batchmean", t2_scale=True):
    """:func:`generalized_jsd` on checked arguments (labels folded into ``mask``)."""
    T = temperature
    jsd, djsd = JSD_PER_POSITION[convention](student_logits, teacher_logits, T, beta)
    t2 = T**2 if t2_scale else 1.0  # Hinton et al. §2
    return reduce_positions(t2 * jsd, t2 * djsd, mask, reduction)


def generalized_jsd(student_logits, teacher_logits, *, beta=0.5, convention="trl",
                    temperature=1.0, mask=None, labels=None, ignore_index=-100,
                    reduction="batchmean", t2_scale=True):
    r"""Generalized Jensen-Shannon divergence per token (GKD, Agarwal et al. 2024, Eq. 1).

    .. math::

        m = \beta p_t + (1-\beta) p_s, \qquad
        \ell_m = \beta\, KL(p_t \| m) + (1-\beta)\, KL(p_s \| m), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1-\beta}{T}\, p_{s,v}
            \big(\log p_{s,v} - \log m_v - KL(p_s \| m)\big)

    reduced as in :func:`minikd.forward_kl` (times T² unless ``t2_scale=False``). As
    :math:`\beta \to 0`, :math:`\ell / \beta \to KL(p_t \| p_s)`; as :math:`\beta \to 1`,
    :math:`\ell / (1-\beta) \to KL(p_s \| p_t)` (Huszár 2015); β = 0.5 is the usual JSD.

    ``convention`` (TRL's ``GKDTrainer.generalized_jsd_loss`` changed three times):

    * ``"trl"`` (default; TRL since PR #3043, March 2025): Eq. 1 for 0 < β < 1, and the
      *unscaled* forward KL at β = 0 and reverse KL at β = 1 (so the loss jumps at the ends).
    * ``"gkd"``: Eq. 1 everywhere, continuous, 0 at β = 0 and β = 1. DistiLLM's
      ``js_distance(lam)`` is this at β = 1 − λ.
    * ``"trl_legacy"`` (TRL from PR #2204 to PR #3043): :math:`m = \beta p_s + (1-\beta) p_t`
      with the same weights β on :math:`KL(p_t \| m)` and 1 − β on :math:`KL(p_s \| m)`, so
      reverse KL at β = 0 and forward KL at β = 1, continuous. Its mixture is ``"gkd"``'s at
      1 − β, but its weights are not: it equals ``"gkd"`` only at β = 0.5.
    * ``"trl_logspace"`` (the first GKDTrainer, PR #1814, merged as ``85696aa6``):
      log-probabilities interpolated instead of probabilities,
      ``log m = beta log p_s + (1 - beta) log p_t``, which works out to
      :math:`\beta^2 KL(p_t \| p_s) + (1-\beta)^2 KL(p_s \| p_t)`: reverse KL at β = 0,
      forward KL at β = 1, scaled by (1 − β)² and β².

    PyTorch twin (``"trl"``, 0 < β < 1): ``lm = torch.logsumexp(torch.stack([ls +
    math.log1p(-beta), lt + math.log(beta)]), 0)``; ``(beta * F.kl_div(lm, lt, reduction="none",
    log_target=True) + (1 - beta) * F.kl_div(lm, ls, reduction="none",
    log_target=True)).sum(-1)[mask].mean()`` with ``ls, lt = log_softmax(zs/T), log_softmax(zt/T)``.

    Parameters
    ----------
    student_logits, teacher_logits : array_like of shape (..., V)
    beta : float in [0, 1], default 0.5
        Weight of the teacher in the mixture (TRL ``GKDConfig.beta``, default 0.5).
    convention : {"trl", "gkd", "trl_legacy", "trl_logspace"}, default "trl"
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`minikd.forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(generalized_jsd(z_s, z_t, beta=0.5).loss, 4)
    0.2476
    >>> [round(generalized_jsd(z_s, z_t, beta=b).loss, 4) for b in (0.0, 1e-3, 1.0)]
    [1.1504, 0.0011, 1.1504]
    """
    func = "generalized_jsd"
    beta = check_unit_interval(beta, "beta", func)
    convention = check_choice(convention, "convention", func, JSD_CONVENTIONS)
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, func)
    return generalized_jsd_kernel(z_s, z_t, beta=beta, convention=convention, temperature=T,
                                  mask=mask, reduction=reduction, t2_scale=t2_scale)


def skew_kl_kernel(student_logits, teacher_logits, *, alpha=0.1, temperature, mask=None,
                   reduction="batchmean", t2_scale=True):
    """:func:`skew_kl` on checked arguments."""
    T = temperature
    skl, dskl = skew_kl_per_position(student_logits, teacher_logits, T, alpha)
    t2 = T**2 if t2_scale else 1.0
    return reduce_positions(t2 * skl, t2 * dskl, mask, reduction)


def skew_kl(student_logits, teacher_logits, *, alpha=0.1, temperature=1.0, mask=None,
            labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Skew KL per token (DistiLLM's α-SKL): the teacher against a skewed student.

    .. math::

        m = \alpha p_t + (1-\alpha) p_s, \qquad \ell_m = KL(p_t \| m), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1-\alpha}{T}\, p_{s,v}
            \Big(\sum_u \frac{p_{s,u}\, p_{t,u}}{m_u} - \frac{p_{t,v}}{m_v}\Big)

    Ko et al. (2024), "DistiLLM: Towards Streamlined Distillation for Large Language Models",
    §3 (α-SKL), and the authors' ``distillm/losses.py``. Reduced as in :func:`minikd.forward_kl`.
    α = 0 is the forward KL; mixing α of the teacher into the student bounds
    :math:`p_t / m \le 1 / \alpha`, which keeps the gradient bounded where the student puts no
    mass. PyTorch twin: ``F.kl_div(torch.log(alpha * pt + (1 - alpha) * ps), pt,
    reduction="none").sum(-1)[mask].mean()``. DistiLLM's ``skewed_forward_kl(lam=alpha)``
    returns the cross-entropy :math:`-\sum p_t \log m` (this + H(p_t); same gradient), with
    T = 1 and no T².

    Parameters
    ----------
    student_logits, teacher_logits : array_like of shape (..., V)
    alpha : float in [0, 1), default 0.1
        Weight of the teacher in the skewed student (DistiLLM's ``skew_alpha``, default 0.1).
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`minikd.forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(skew_kl(z_s, z_t, alpha=0.0).loss, 4), round(skew_kl(z_s, z_t, alpha=0.1).loss, 4)
    (1.1504, 0.8299)
    """
    alpha = check_fraction(alpha, "alpha", "skew_kl")
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, "skew_kl")
    return skew_kl_kernel(z_s, z_t, alpha=alpha, temperature=T, mask=mask, reduction=reduction,
                          t2_scale=t2_scale)


def skew_reverse_kl_kernel(student_logits, teacher_logits, *, alpha=0.1, temperature, mask=None,
                           reduction="batchmean", t2_scale=True):
    """:func:`skew_reverse_kl` on checked arguments."""
    T = temperature
    srkl, dsrkl = skew_reverse_kl_per_position(student_logits, teacher_logits, T, alpha)
    t2 = T**2 if t2_scale else 1.0
    return reduce_positions(t2 * srkl, t2 * dsrkl, mask, reduction)


def skew_reverse_kl(student_logits, teacher_logits, *, alpha=0.1, temperature=1.0, mask=None,
                    labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Skew reverse KL per token (DistiLLM's α-SRKL): the student against a skewed teacher.

    .. math::

        m = (1-\alpha) p_t + \alpha p_s, \qquad \ell_m = KL(p_s \| m), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1}{T} p_{s,v}
            \big(g_v - \textstyle\sum_u p_{s,u} g_u\big),
        \quad g = \log \frac{p_s}{m} - \alpha \frac{p_s}{m}

    Ko et al. (2024), "DistiLLM", §3 (α-SRKL). Reduced as in :func:`minikd.forward_kl`.
    α = 0 is the reverse KL. PyTorch twin: ``F.kl_div(torch.log((1 - alpha) * pt + alpha * ps),
    ps, reduction="none").sum(-1)[mask].mean()``; DistiLLM ``skewed_reverse_kl(lam=alpha)``
    (T = 1, no T²).

    Parameters
    ----------
    student_logits, teacher_logits : array_like of shape (..., V)
    alpha : float in [0, 1), default 0.1
        Weight of the student in the skewed teacher.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`minikd.forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(skew_reverse_kl(z_s, z_t, alpha=0.1).loss, 4)
    0.8299
    """
    alpha = check_fraction(alpha, "alpha", "skew_reverse_kl")
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, "skew_reverse_kl")
    return skew_reverse_kl_kernel(z_s, z_t, alpha=alpha, temperature=T, mask=mask,
                                  reduction=reduction, t2_scale=t2_scale)
