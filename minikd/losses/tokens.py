r"""Token-level distillation losses for sequence models: logits (..., V), masked positions.

Every function takes student logits and teacher logits of shape (..., V) (for a language model
(N, L, V): batch, sequence, vocabulary), turns each position into
:math:`p_s = \mathrm{softmax}(z_s / T)` (student) and :math:`p_t = \mathrm{softmax}(z_t / T)`
(teacher), computes a divergence :math:`\ell_m` per position
(:mod:`minikd.losses.divergences`), and reduces over the selected positions (``mask``, or
``labels != ignore_index`` as Hugging Face does):

* :func:`forward_kl`: :math:`KL(p_t \| p_s)`, mass-covering (classic KD, per token);
* :func:`reverse_kl`: :math:`KL(p_s \| p_t)`, mode-seeking (MiniLLM);
* :func:`token_divergence`: any divergence by name, including those of
  :mod:`minikd.losses.mixtures`, which compare each distribution with a mixture m of the two:
  the generalized JSD (GKD Eq. 1, ``convention`` picks a TRL version), skew KL and skew
  reverse KL (DistiLLM);
* :mod:`minikd.losses.topk`: any of them from the teacher's stored top-k.

Conventions (``docs/token_losses.md`` has the derivations and the library mapping):

* ``reduction="batchmean"`` (default): sum over the selected positions divided by their number M,
  a per-token mean, as TRL (with labels), DistiLLM and HF DistilBERT do. ``"sum"``; ``"mean"``
  divides by M·V (``torch`` ``jsd.mean()``); ``"sequence_mean"`` divides by N, the size of the first
  axis (``torch``'s ``reduction="batchmean"`` on an (N, L, V) tensor). A fully masked batch gives
  loss 0.0 and a zero gradient, never NaN.
* ``t2_scale=True`` (default) multiplies the loss by T², as minikd does for every soft loss
  (Hinton et al. 2015, §2). TRL's ``generalized_jsd_loss`` has no T² (pass ``t2_scale=False``).
* The gradient is with respect to the student logits; the teacher is a constant. Masked
  positions get a zero gradient.

Each public function checks its arguments, then calls its kernel (``forward_kl_kernel``, ...),
which takes the same parameters already checked, with the labels folded into ``mask``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import (
    check_bool,
    check_choice,
    check_fraction,
    check_labels,
    check_mask,
    check_pair,
    check_temperature,
    check_unit_interval,
    param_error,
)
from .divergences import (
    DIVERGENCES,
    JSD_CONVENTIONS,
    divergence_per_position,
    reverse_kl_per_position,
)
from .reduction import REDUCTIONS, reduce_positions
from .response_kernels import kl_per_position

__all__ = [
    "DIVERGENCES",
    "JSD_CONVENTIONS",
    "forward_kl",
    "reverse_kl",
    "token_divergence",
]


# -- kernels: checked arguments, labels folded into mask --------------------------------------

def forward_kl_kernel(student_logits, teacher_logits, *, temperature, mask=None,
                      reduction="batchmean", t2_scale=True):
    """:func:`forward_kl` on checked arguments: ``kd_loss``'s per-position KL, T², reduction."""
    T = temperature
    kl, dkl = kl_per_position(student_logits, teacher_logits, T)  # (...,), (..., V)
    t2 = T**2 if t2_scale else 1.0  # Hinton et al. §2
    return reduce_positions(t2 * kl, t2 * dkl, mask, reduction)


def reverse_kl_kernel(student_logits, teacher_logits, *, temperature, mask=None,
                      reduction="batchmean", t2_scale=True):
    """:func:`reverse_kl` on checked arguments."""
    T = temperature
    rkl, drkl = reverse_kl_per_position(student_logits, teacher_logits, T)  # (...,), (..., V)
    t2 = T**2 if t2_scale else 1.0
    return reduce_positions(t2 * rkl, t2 * drkl, mask, reduction)


def token_divergence_kernel(student_logits, teacher_logits, *, divergence="forward_kl", beta=0.5,
                            alpha=0.1, convention="trl", temperature, mask=None,
                            reduction="batchmean", t2_scale=True):
    """:func:`token_divergence` on checked arguments: the named per-position divergence, T²,
    reduction (the same arithmetic as the named function's kernel)."""
    T = temperature
    per_position = divergence_per_position(divergence, beta=beta, alpha=alpha,
                                           convention=convention)
    ell, dell = per_position(student_logits, teacher_logits, T)  # (...,), (..., V)
    t2 = T**2 if t2_scale else 1.0
    return reduce_positions(t2 * ell, t2 * dell, mask, reduction)


# -- boundary checks shared by the token losses (here, in mixtures.py and topk.py) ------------

def check_positions(mask, labels, ignore_index, shape, n_classes, func):
    """The positions that count, as a bool mask of ``shape`` (None: all of them): ``mask``
    without the positions whose label is ``ignore_index``."""
    if labels is not None:
        return check_labels(labels, shape, n_classes, func, ignore_index=ignore_index,
                            mask=mask)[1]
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise param_error("ignore_index", func, "an int or None", repr(ignore_index), TypeError)
    return check_mask(mask, shape, func)


def check_divergence(divergence, beta, alpha, convention, func):
    """The checked ``(divergence, beta, alpha, convention)``; only the hyperparameters the chosen
    divergence uses are checked (the others are passed on unused)."""
    divergence = check_choice(divergence, "divergence", func, DIVERGENCES)
    if divergence == "generalized_jsd":
        beta = check_unit_interval(beta, "beta", func)
        convention = check_choice(convention, "convention", func, JSD_CONVENTIONS)
    elif divergence in ("skew_kl", "skew_reverse_kl"):
        alpha = check_fraction(alpha, "alpha", func)
    return divergence, beta, alpha, convention


def check_token_args(student_logits, teacher_logits, temperature, mask, labels, ignore_index,
                     reduction, t2_scale, func):
    """The checked ``(student_logits, teacher_logits, T, mask, t2_scale)`` of a token loss."""
    T = check_temperature(temperature, func)
    z_s, z_t = check_pair(student_logits, teacher_logits, func, temperature=T, min_ndim=1)
    mask = check_positions(mask, labels, ignore_index, z_s.shape[:-1], z_s.shape[-1], func)
    check_choice(reduction, "reduction", func, REDUCTIONS)
    return z_s, z_t, T, mask, check_bool(t2_scale, "t2_scale", func)


# -- the public losses: check, then kernel ------------------------------------------------------

def forward_kl(student_logits, teacher_logits, *, temperature=1.0, mask=None, labels=None,
               ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Forward KL per token, :math:`KL(p_t \| p_s)`: mass-covering distillation.

    .. math::

        \ell_m = \sum_v p_{t,v} (\log p_{t,v} - \log p_{s,v}), \qquad
        L = T^2 \, \frac{1}{M} \sum_{m \in \text{mask}} \ell_m, \qquad
        \frac{\partial L}{\partial z_{s,m}} = \frac{T}{M} (p_{s,m} - p_{t,m})

    with :math:`p_t = \mathrm{softmax}(z_t / T)`, :math:`p_s = \mathrm{softmax}(z_s / T)` per
    position, M the number of selected positions (``reduction="batchmean"``; the T² and T become
    1 and 1/T with ``t2_scale=False``). Hinton et al. (2015), §2, applied per token (Kim & Rush
    2016, "Sequence-Level Knowledge Distillation", Eq. 4 word-level KD); the same per-position
    kernel as :func:`minikd.kd_loss`. PyTorch twin:
    ``F.kl_div(F.log_softmax(zs/T, -1), F.log_softmax(zt/T, -1), reduction="none",
    log_target=True).sum(-1)[mask].mean() * T**2``; TRL ``generalized_jsd_loss(beta=0)``;
    DistiLLM ``forward_kl`` is the cross-entropy :math:`-\sum p_t \log p_s` (this + H(p_t)).

    Parameters
    ----------
    student_logits : array_like of shape (..., V)
        The gradient is with respect to these.
    teacher_logits : array_like of shape (..., V)
        Constants.
    temperature : float, default 1.0
        T in [1e-6, 1e6], applied to both.
    mask : array_like of bool of shape (...,), optional
        Positions to include.
    labels : array_like of int of shape (...,), optional
        Token labels; positions equal to ``ignore_index`` are excluded (combined with ``mask``).
    ignore_index : int or None, default -100
        Label value that marks a position to skip (PyTorch's and Hugging Face's -100).
    reduction : {"batchmean", "sum", "mean", "sequence_mean"}, default "batchmean"
        Over the M counted positions: sum / M, sum, sum / (M·V); "sequence_mean": sum / N, the
        first axis's size, masked or not (PyTorch's batchmean on (N, L, V)).
    t2_scale : bool, default True
        Multiply by T².

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (..., V), dtype of the inputs).

    Examples
    --------
    >>> import numpy as np
    >>> z_s = np.array([[[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]]])    # (N, L, V) = (1, 2, 3)
    >>> z_t = np.array([[[2.0, 1.0, 0.0], [9.0, 9.0, 9.0]]])
    >>> loss, grad = forward_kl(z_s, z_t, labels=[[2, -100]])   # second token ignored
    >>> round(loss, 4), np.round(grad[0, 1], 4)
    (1.1504, array([0., 0., 0.]))
    """
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, "forward_kl")
    return forward_kl_kernel(z_s, z_t, temperature=T, mask=mask, reduction=reduction,
                             t2_scale=t2_scale)


def reverse_kl(student_logits, teacher_logits, *, temperature=1.0, mask=None, labels=None,
               ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Reverse KL per token, :math:`KL(p_s \| p_t)`: mode-seeking distillation (MiniLLM).

    .. math::

        \ell_m = \sum_v p_{s,v} (\log p_{s,v} - \log p_{t,v}), \qquad
        L = T^2 \, \frac{1}{M} \sum_{m} \ell_m, \qquad
        \frac{\partial L}{\partial z_{s,m,v}} = \frac{T}{M}\, p_{s,v}
            (\log p_{s,v} - \log p_{t,v} - \ell_m)

    Gu et al. (2024), "MiniLLM", §2.1 (their objective is this divergence at the sequence level;
    the per-token full-vocabulary term is the "single-step" part of their gradient, §2.2).
    PyTorch twin: ``F.kl_div(F.log_softmax(zt/T, -1), F.log_softmax(zs/T, -1),
    reduction="none", log_target=True).sum(-1)[mask].mean() * T**2``; TRL
    ``generalized_jsd_loss(beta=1)``; DistiLLM ``reverse_kl``.

    Parameters
    ----------
    student_logits, teacher_logits : array_like of shape (..., V)
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = reverse_kl([[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]], temperature=2.0)
    >>> round(loss, 4), np.round(grad, 4)
    (1.2806, array([[-0.492 , -0.1967,  0.6887]]))
    """
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, "reverse_kl")
    return reverse_kl_kernel(z_s, z_t, temperature=T, mask=mask, reduction=reduction,
                             t2_scale=t2_scale)


def token_divergence(student_logits, teacher_logits, *, divergence="forward_kl", beta=0.5,
                     alpha=0.1, convention="trl", temperature=1.0, mask=None, labels=None,
                     ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Any of the token-level divergences, chosen by name (for loops and configs).

    .. math::

        L = T^2 \frac{1}{M} \sum_m D(p_{t,m}, p_{s,m}), \qquad
        \frac{\partial L}{\partial z_s} \text{ as in the named function}

    Parameters
    ----------
    student_logits, teacher_logits : array_like of shape (..., V)
    divergence : {"forward_kl", "reverse_kl", "generalized_jsd", "skew_kl", "skew_reverse_kl"}
    beta, convention : used by "generalized_jsd" only (:func:`minikd.generalized_jsd`).
    alpha : used by "skew_kl" and "skew_reverse_kl" only.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> loss = token_divergence([[0.0, 1.0]], [[1.0, 0.0]], divergence="reverse_kl").loss
    >>> round(loss, 4)
    0.4621
    """
    func = "token_divergence"
    divergence, beta, alpha, convention = check_divergence(divergence, beta, alpha, convention,
                                                           func)
    z_s, z_t, T, mask, t2_scale = check_token_args(
        student_logits, teacher_logits, temperature, mask, labels, ignore_index, reduction,
        t2_scale, func)
    return token_divergence_kernel(z_s, z_t, divergence=divergence, beta=beta, alpha=alpha,
                                   convention=convention, temperature=T, mask=mask,
                                   reduction=reduction, t2_scale=t2_scale)
