r"""The catalog behind :func:`minikd.diagnose`: every KD loss a user's code may compute, by name.

Each :class:`Variant` is one full loss (the soft term of :mod:`minikd.verify.diagnosis.variants`,
blended with the hard cross-entropy when ``alpha`` is given), with a one-line explanation, its
PyTorch spelling and the public report it comes from. Three kinds:

* ``correct``: minikd's :func:`minikd.kd_loss` (soft term only) or
  :func:`minikd.distillation_loss` (``alpha * T² KL + (1 - alpha) * CE``);
* known bugs, each named after what it gets wrong (``reduction_mean``, ``missing_t2``, ...);
* every preset of :func:`minikd.kd_loss_as`, by its convention name (``"repdistiller"``, ...).

The reports were read in their issue threads; where no public report was found, the entry says
so. ``alpha`` is minikd's: the weight of the soft term (``docs/conventions.md``).

The module also holds how two losses are compared: :func:`value_error`, :func:`grad_error` (with
the floors of :func:`error_floors`) and :func:`distance`, used by :func:`minikd.diagnose` and
:func:`minikd.diagnose_inputs` alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..conventions import CONVENTIONS, kd_loss_as
from . import variants as dv

__all__ = [
    "FLOOR",
    "Inputs",
    "Variant",
    "catalog",
    "correct_code",
    "distance",
    "error_floors",
    "evaluate",
    "grad_error",
    "value_error",
]

FLOOR = 1e-3  # the error floors' fraction of the correct loss's (and gradient's) natural size

_KL = "F.kl_div(F.log_softmax(z_s / T, dim=1), F.softmax(z_t / T, dim=1), reduction={r})"
_BATCHMEAN = _KL.format(r="'batchmean'")


class Variant(NamedTuple):
    """One way to compute the KD loss.

    Attributes
    ----------
    name : str
        Stable name: ``"correct"``, a bug's name, or a :func:`minikd.kd_loss_as` convention.
    loss : callable
        ``loss(student_logits, teacher_logits, labels, temperature, alpha) -> LossGrad`` on
        checked float64 arrays of shape (N, C); ``alpha`` None means the soft term alone.
    explanation : str
        One line; ``{N}``, ``{C}``, ``{T}`` and ``{T2}`` are filled in with the inputs' values.
    code : str
        The soft term as PyTorch code (``z_s``, ``z_t``, ``y``, ``T``, ``alpha``).
    source : str
        The public report(s) or the library file it comes from.
    needs_alpha : bool
        Whether the variant exists only for a blended loss (``alpha_swapped``).
    """

    name: str
    loss: Callable
    explanation: str
    code: str
    source: str
    needs_alpha: bool = False


class Inputs(NamedTuple):
    """Checked inputs of a KD loss: float64 logits (N, C), labels (N,) int64 or None, T, alpha."""

    student_logits: np.ndarray
    teacher_logits: np.ndarray
    labels: np.ndarray | None
    temperature: float
    alpha: float | None


def correct_code(alpha_given):
    """The PyTorch one-liner of the correct loss: the fix to apply."""
    if not alpha_given:
        return f"loss = {_BATCHMEAN} * T**2"
    return f"loss = alpha * {_BATCHMEAN} * T**2 + (1 - alpha) * F.cross_entropy(z_s, y)"


def _blended(soft_term):
    """The full loss of a soft-term function: alone, or ``alpha * S + (1 - alpha) * CE``."""
    def loss(student_logits, teacher_logits, labels, temperature, alpha):
        soft = soft_term(student_logits, teacher_logits, temperature=temperature)
        return dv.with_hard_term(soft, student_logits, labels, alpha)
    return loss


def _alpha_swapped(student_logits, teacher_logits, labels, temperature, alpha):
    """``(1 - alpha) * S + alpha * CE``: the soft and hard weights exchanged."""
    soft = dv.soft_correct(student_logits, teacher_logits, temperature=temperature)
    return dv.with_hard_term(soft, student_logits, labels, 1.0 - alpha)


def _preset(name):
    """The loss of the kd_loss_as preset ``name`` (soft term alone when alpha is None)."""
    def loss(student_logits, teacher_logits, labels, temperature, alpha):
        if alpha is None:
            return kd_loss_as(name, student_logits, teacher_logits, temperature=temperature,
                              alpha=1.0)
        return kd_loss_as(name, student_logits, teacher_logits, labels,
                          temperature=temperature, alpha=alpha)
    return loss


_LOG_P_T = "F.log_softmax(z_t / T, dim=1)"

_BUGS = [
    Variant(
        "correct", _blended(dv.soft_correct),
        "T² times KL(p_t || p_s) summed over the classes and averaged over the N rows "
        "('batchmean'): minikd.kd_loss, Hinton et al. (2015) §2.",
        f"{_BATCHMEAN} * T**2",
        "Hinton, Vinyals & Dean (2015), §2; RepDistiller, mdistiller, torchdistill, HF DistilBERT"),
    Variant(
        "reduction_mean", _blended(dv.soft_reduction_mean),
        "The KL is averaged over all N·C entries (reduction='mean', nn.KLDivLoss()'s default, "
        "or .mean(1)), not over the N rows: the soft term is C = {C} times too small.",
        f"{_KL.format(r=repr('mean'))} * T**2",
        "HikariTJU/LD #74 (.mean(1) then a batch mean: 1/17 of the KL with 17 bins); "
        "haitongli/knowledge-distillation-pytorch #2 (nn.KLDivLoss() scales the gradient by "
        "the number of classes) and #48 (may explain its large tuned T); "
        "yuanli2333/Teacher-free-Knowledge-Distillation #5 (the author: not a bug, the "
        "hyper-parameters were tuned with it)"),
    Variant(
        "reduction_sum", _blended(dv.soft_reduction_sum),
        "The KL is summed over the batch and never divided by N (reduction='sum', or "
        "size_average=False without '/ batch size'): the soft term is N = {N} times too large.",
        f"{_KL.format(r=repr('sum'))} * T**2",
        "no KD bug report found; PyTorch's KLDivLoss note (pytorch/pytorch PR #7006): "
        "size_average=False, 'then divide the output by the batch size'"),
    Variant(
        "numel_norm", _blended(dv.soft_numel_norm),
        "The summed KL is divided by numel() = N·C instead of the batch size N: the soft term "
        "is C = {C} times too small (on (N, C) logits the same number as reduction='mean').",
        f"{_KL.format(r=repr('sum'))} * T**2 / z_s.numel()",
        "facebookresearch/deit #116 and #61 (the authors: kept on purpose, it reproduces the "
        "legacy KLDivLoss averaging; batchmean gave 'slightly lower/similar performance')"),
    Variant(
        "missing_t2", _blended(dv.soft_missing_t2),
        "No T² factor: the soft term and its gradient are T² = {T2:g} times too small, so the "
        "hard term dominates more as T grows.",
        _BATCHMEAN,
        "IntelLabs/distiller #122 (the maintainer: 'you're correct... Will fix'); "
        "keras-team/keras-io #869 and PR #870 (the example's author left T² out on purpose)"),
    Variant(
        "t_not_t2", _blended(dv.soft_t_not_t2),
        "T instead of T²: the soft term and its gradient are T = {T:g} times too small.",
        f"{_BATCHMEAN} * T",
        "no public report found"),
    Variant(
        "probs_as_input", _blended(dv.soft_probs_as_input),
        "F.kl_div got probabilities where it expects log-probabilities: the value is "
        "Σ p_t (log p_t - p_s), always negative, and not a divergence.",
        "F.kl_div(F.softmax(z_s / T, dim=1), F.softmax(z_t / T, dim=1), "
        "reduction='batchmean') * T**2",
        "microsoft/ProDA #20 (the maintainer: 'It's a bug') and #43 (at T = 1, averaged over "
        "pixels)"),
    Variant(
        "reversed_kl", _blended(dv.soft_reversed_kl),
        "The KL is reversed, KL(p_s || p_t) instead of KL(p_t || p_s): F.kl_div's input and "
        "target are swapped.",
        "F.kl_div(F.log_softmax(z_t / T, dim=1), F.softmax(z_s / T, dim=1), "
        "reduction='batchmean') * T**2",
        "paiml/aprender PR #2153 (a KD loss that computed KL(student || teacher), fixed)"),
    Variant(
        "student_t1", _blended(dv.soft_student_t1),
        "The student's softmax is at T = 1: its logits are not divided by T (the teacher's are).",
        "F.kl_div(F.log_softmax(z_s, dim=1), F.softmax(z_t / T, dim=1), "
        "reduction='batchmean') * T**2",
        "no public report found"),
    Variant(
        "teacher_t1", _blended(dv.soft_teacher_t1),
        "The teacher's softmax is at T = 1: its logits are not divided by T (the student's are).",
        "F.kl_div(F.log_softmax(z_s / T, dim=1), F.softmax(z_t, dim=1), "
        "reduction='batchmean') * T**2",
        "huawei-noah/Pretrained-Language-Model #11 (TinyBERT's paper formula has T on the "
        "student only, its code on both; the authors: the same at their T = 1)"),
    Variant(
        "ce_not_kl", _blended(dv.soft_ce_not_kl),
        "The soft cross-entropy -Σ p_t log p_s instead of the KL: the value is larger by "
        "T² times the teacher's entropy; the gradient is the same.",
        "-(F.softmax(z_t / T, dim=1) * F.log_softmax(z_s / T, dim=1)).sum(1).mean() * T**2",
        "szagoruyko/attention-transfer #12, imirzadeh/Teacher-Assistant-Knowledge-Distillation"
        " #4 (the value differs from the KL by a constant, the gradient does not)"),
    Variant(
        "teacher_vs_teacher", _blended(dv.soft_teacher_vs_teacher),
        "The teacher is compared with itself: the soft term is 0 and gives the student no "
        "gradient, so distillation silently stops.",
        f"F.kl_div({_LOG_P_T}, F.softmax(z_t / T, dim=1), reduction='batchmean') * T**2",
        "labmlai/annotated_deep_learning_paper_implementations #66 (the maintainer: 'it just "
        "completely stops doing the distillation')"),
    Variant(
        "alpha_swapped", _alpha_swapped,
        "alpha weighs the hard cross-entropy and 1 - alpha the soft term: the two weights are "
        "exchanged.",
        f"(1 - alpha) * {_BATCHMEAN} * T**2 + alpha * F.cross_entropy(z_s, y)",
        "no bug report found; the Keras example and torchdistill name the hard weight 'alpha' "
        "(minikd.CONVENTIONS['kd'][name].weights)",
        needs_alpha=True),
]


def catalog(alpha_given):
    """Every variant that applies: the correct loss, the bugs, then the kd_loss_as presets.

    Parameters
    ----------
    alpha_given : bool
        Whether the loss is a blend with the hard cross-entropy (``alpha_swapped`` needs one).

    Returns
    -------
    list of Variant
        In catalog order, the order :func:`minikd.diagnose` uses to rank exact ties.
    """
    variants = [v for v in _BUGS if alpha_given or not v.needs_alpha]
    for name, conv in CONVENTIONS["kd"].items():
        variants.append(Variant(name, _preset(name), f"The {conv.library} convention: {conv.note}",
                                conv.formula, conv.source))
    return variants


# ---------------------------------------------------------------- comparing two losses

def evaluate(variants, inputs):
    """The LossGrad of every variant on the same inputs (an :class:`Inputs`), in order."""
    x = inputs
    return [v.loss(x.student_logits, x.teacher_logits, x.labels, x.temperature, x.alpha)
            for v in variants]


def error_floors(correct, inputs):
    r"""The floors :math:`(f_v, f_g)` of :func:`value_error` and :func:`grad_error`.

    .. math::

        f_v = 10^{-3} \max(|L|, T^2 \log C), \qquad
        f_g = 10^{-3} \max(\|\nabla L\|_\infty, T / N)

    for the correct loss :math:`L` (``correct``, a LossGrad) on (N, C) logits at temperature T:
    the natural sizes of a KD loss and of its gradient (:math:`T^2 \log C` bounds
    :math:`T^2 H(p_t)`, :math:`T / N` bounds :math:`\frac{T}{N} |p_s - p_t|`), so that a
    correct loss of 0 (student equal to teacher) is not compared relative to its round-off.
    """
    N, C = inputs.student_logits.shape
    T = inputs.temperature
    f_v = FLOOR * max(abs(correct.loss), T**2 * math.log(C), 1e-300)
    f_g = FLOOR * max(float(np.abs(correct.grad).max()), T / N)
    return f_v, f_g


def value_error(u, v, floor):
    r"""Relative error :math:`|u - v| / \max(|u|, |v|, f_v)` of two loss values."""
    return abs(u - v) / max(abs(u), abs(v), floor)


def grad_error(g_u, g_v, floor):
    r"""Normwise error :math:`\max_i |g_{u,i} - g_{v,i}| / \max(\|g_u\|_\infty,
    \|g_v\|_\infty, f_g)` of two gradients (of one shape)."""
    scale = max(float(np.abs(g_u).max()), float(np.abs(g_v).max()), floor)
    return float(np.abs(g_u - g_v).max()) / scale


def distance(a, b, floors):
    """How far apart two LossGrads are: the larger of their value and gradient errors."""
    return max(value_error(a.loss, b.loss, floors[0]), grad_error(a.grad, b.grad, floors[1]))
