r"""Diagnose a KD loss that disagrees: which known bug, or which library convention, it computes.

:func:`diagnose` takes the logits a user fed to their own KD loss and the number (and, better, the
gradient) it returned, computes every variant of :func:`minikd.verify.diagnosis.catalog.catalog` in
float64 with its closed-form gradient, and ranks them by how well they match:

.. math::

    e_{\text{value}} = \frac{|u - v|}{\max(|u|, |v|, f_v)}, \qquad
    e_{\text{grad}} = \frac{\max_i |g_{u,i} - g_{v,i}|}{\max(\|g_u\|_\infty, \|g_v\|_\infty, f_g)}

for the user's value :math:`u` and gradient :math:`g_u` against a variant's :math:`v`, :math:`g_v`,
with the floors of :func:`minikd.verify.diagnosis.catalog.error_floors` (a thousandth of the
natural size of a KD loss and of its gradient), which keep a correct loss of 0 from turning
round-off into a relative error of 1.

Variants that agree on the user's inputs *and* on every probe of
:func:`minikd.verify.diagnosis.probes.probes` (another T, another alpha, another batch size, a
probability Keras clips, other logits) are the same formula: one match, ``same_as`` the others.
Variants that agree on the user's inputs only are a *tie*, and each names the first probe that
separates them. :func:`minikd.diagnose_inputs` draws inputs without ties.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..._validation import (
    as_float_array,
    as_labels,
    check_fraction,
    check_pair,
    check_temperature,
    check_unit_interval,
    param_error,
)
from .catalog import (
    Inputs,
    catalog,
    correct_code,
    distance,
    error_floors,
    evaluate,
    grad_error,
    value_error,
)
from .probes import ROUNDOFF, diagnose_inputs, probes
from .report import format_diagnosis

__all__ = ["DEFAULT_TOL", "Match", "diagnose", "diagnose_inputs", "format_diagnosis"]

DEFAULT_TOL = 1e-3  # relative: about four significant digits of a printed loss


class Match(NamedTuple):
    """One variant (or several identical ones) held against the user's loss.

    Attributes
    ----------
    name : str
        The variant's stable catalog name (``"correct"``, ``"reduction_mean"``, a convention).
    value : float
        The variant's value on the inputs (float64).
    value_error : float
        Relative error of the user's value against it (with the floor of the module docstring).
    grad_error : float or None
        Normwise error of the user's gradient against the variant's; None without ``grad``.
    matched : bool
        Both errors are within the tolerance.
    explanation : str
        One line: what this variant computes, with the inputs' N, C and T filled in.
    code : str
        The variant as PyTorch code.
    fix : str
        The PyTorch one-liner of the correct loss.
    source : str
        The public report(s) the variant comes from, or "no public report found".
    same_as : tuple of str
        Other catalog names whose formula gives the same numbers on every input tried.
    ties : tuple of (str, str)
        For a match: each other matching variant and the inputs that would separate the two.
    """

    name: str
    value: float
    value_error: float
    grad_error: float | None
    matched: bool
    explanation: str
    code: str
    fix: str
    source: str
    same_as: tuple
    ties: tuple


def _groups_and_ties(variants, results, floors, inputs, matched, tol):
    """Identical variants grouped under the first of them, and what separates tied matches.

    A variant joins an earlier group when it agrees with the group's first member to 1e-9 on
    the user's inputs and on every probe. Two matching groups are a tie: the first probe that
    moves them more than 10 tol apart (or, failing that, the farthest) is what separates them.
    Returns (group leader of each variant, {(a, b): description}).
    """
    cache = []

    def probed():  # the probes are evaluated once, and only when needed
        if not cache:
            for what, p in probes(inputs):
                res = evaluate(variants, p)
                cache.append((what, res, error_floors(res[0], p)))  # res[0]: correct
        return cache

    leader = list(range(len(variants)))
    for j in range(len(variants)):
        for i in range(j):
            a, b = results[i], results[j]
            if leader[i] == i and value_error(a.loss, b.loss, floors[0]) <= ROUNDOFF and (
                    distance(a, b, floors) <= ROUNDOFF) and all(
                    distance(r[i], r[j], f) <= ROUNDOFF for _, r, f in probed()):
                leader[j] = i
                break
    hits = [i for i in range(len(variants)) if leader[i] == i and matched[i]]
    ties = {}
    for a in hits:
        for b in hits:
            if a < b:
                dists = [(distance(r[a], r[b], f), what) for what, r, f in probed()]
                far = [what for d, what in dists if d > 10 * tol]
                ties[a, b] = ties[b, a] = far[0] if far else max(dists)[1]
    return leader, ties


def _check_inputs(student_logits, teacher_logits, labels, temperature, alpha, func):
    """The checked Inputs of diagnose: float64 logits (N, C), labels when alpha is given."""
    T = check_temperature(temperature, func)
    z_s, z_t = check_pair(student_logits, teacher_logits, func, temperature=T, ndim=2)
    N, C = z_s.shape
    if alpha is not None:
        alpha = check_unit_interval(alpha, "alpha", func)
        if labels is None:
            raise param_error("labels", func, f"an integer array of shape ({N},) when alpha is "
                              "given (the hard term needs them)", "None")
    if labels is not None:
        labels = as_labels(labels, (N,), C, func)
    return Inputs(z_s.astype(np.float64), z_t.astype(np.float64), labels, T, alpha)


def _check_loss(loss, func):
    """The user's loss as a finite float (a Python or NumPy number, or a one-element array)."""
    arr = np.asarray([]) if isinstance(loss, (str, bytes)) else np.asarray(loss)
    if arr.dtype.kind not in "fiu" or arr.size != 1:
        got = f"an array of shape {arr.shape}" if arr.dtype.kind in "fiu" else repr(loss)[:60]
        raise param_error("loss", func, "a real number (the value your loss returned)", got,
                          TypeError)
    value = float(arr.reshape(-1)[0])
    if not math.isfinite(value):
        raise param_error("loss", func, "a finite real number", repr(value))
    return value


def diagnose(student_logits, teacher_logits, labels=None, *, temperature, alpha=None, loss,
             grad=None, tol=DEFAULT_TOL):
    r"""Name the KD loss a number came from: the correct one, a known bug, or a convention.

    .. math::

        L = \frac{\alpha T^2}{N} \sum_n \mathrm{KL}(p^T_{t,n} \| p^T_{s,n})
            + \frac{1 - \alpha}{N} \sum_n -\log p_{s, n y_n}, \qquad
        \frac{\partial L}{\partial z_s} = \frac{\alpha T}{N} (p^T_s - p^T_t)
            + \frac{1 - \alpha}{N} (p_s - e_y)

    is the correct loss (without ``alpha``, the soft term alone: :math:`\alpha = 1`). Every
    variant of the catalog (:mod:`minikd.verify.diagnosis.catalog`: ``correct``,
    ``reduction_mean``, ``reduction_sum``, ``numel_norm``, ``missing_t2``, ``t_not_t2``,
    ``probs_as_input``, ``reversed_kl``, ``student_t1``, ``teacher_t1``, ``ce_not_kl``,
    ``teacher_vs_teacher``, ``alpha_swapped`` and each :func:`minikd.kd_loss_as` preset) is
    computed in float64 on the same inputs and held against ``loss`` (relative value error)
    and ``grad`` (normwise error). The gradient tells apart variants whose values coincide.

    Parameters
    ----------
    student_logits : array_like of shape (N, C)
        The student logits you fed to your loss (token logits: one row per kept position).
    teacher_logits : array_like of shape (N, C)
    labels : array_like of int of shape (N,), optional
        Class indices in [0, C); needed when ``alpha`` is given.
    temperature : float
        The T your loss used, in [1e-6, 1e6].
    alpha : float in [0, 1], optional
        The weight your loss gives the soft term when it blends in the hard cross-entropy;
        None for a loss made of the soft term alone.
    loss : float
        The value your loss returned on these inputs.
    grad : array_like of shape (N, C), optional
        Its gradient with respect to ``student_logits`` (``z_s.grad`` after ``backward()``).
    tol : float in (0, 1), default 1e-3
        A variant matches when both errors are at most ``tol``: 1e-3 accepts a loss printed
        with four significant digits, and float32 round-off is far below it.

    Returns
    -------
    list of Match
        One per distinct formula, best first: the matches (``correct`` first when it is one of
        them, then by error), then the others by error. ``matches[0].matched`` False means
        nothing matched; two or more matches are a tie, and each lists in ``ties`` what would
        separate it from the others. :func:`format_diagnosis` prints the verdict.

    References
    ----------
    Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", §2; the
    issue threads cited by each catalog entry.

    Examples
    --------
    >>> import numpy as np
    >>> x = diagnose_inputs(rng=0, alpha=None)
    >>> z_s, z_t, T = x["student_logits"], x["teacher_logits"], x["temperature"]
    >>> def log_softmax(z):
    ...     z = z - z.max(axis=1, keepdims=True)
    ...     return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    >>> p_t = np.exp(log_softmax(z_t / T))
    >>> kl = p_t * (np.log(p_t) - log_softmax(z_s / T))  # (N, C)
    >>> yours = kl.mean() * T**2  # a mean over N*C entries, where batchmean divides by N
    >>> best = diagnose(z_s, z_t, temperature=T, loss=yours)[0]
    >>> best.name, best.matched, best.same_as
    ('reduction_mean', True, ('numel_norm', 'pytorch_kldivloss_mean'))
    """
    func = "diagnose"
    x = _check_inputs(student_logits, teacher_logits, labels, temperature, alpha, func)
    u = _check_loss(loss, func)
    if grad is not None:
        g_u = as_float_array(grad, "grad", func, ndim=2).astype(np.float64)
        if g_u.shape != x.student_logits.shape:
            raise param_error("grad", func, "an array shaped like student_logits "
                              f"{x.student_logits.shape}", f"shape {g_u.shape}")
    tol = check_fraction(tol, "tol", func, closed_low=False)

    variants = catalog(x.alpha is not None)
    results = evaluate(variants, x)
    floors = error_floors(results[0], x)  # catalog()[0] is the correct loss
    v_err = [float(value_error(u, r.loss, floors[0])) for r in results]
    g_err = [None if grad is None else grad_error(g_u, r.grad, floors[1]) for r in results]
    matched = [bool(v <= tol and (g is None or g <= tol))
               for v, g in zip(v_err, g_err, strict=True)]
    leader, ties = _groups_and_ties(variants, results, floors, x, matched, tol)

    N, C = x.student_logits.shape
    fill = {"N": N, "C": C, "T": x.temperature, "T2": x.temperature**2}
    fix = correct_code(x.alpha is not None)
    matches = []
    for i, v in enumerate(variants):
        if leader[i] == i:
            same = tuple(w.name for j, w in enumerate(variants) if j != i and leader[j] == i)
            tied = tuple((variants[b].name, what) for (a, b), what in sorted(ties.items())
                         if a == i)
            matches.append(Match(v.name, float(results[i].loss), v_err[i], g_err[i], matched[i],
                                 v.explanation.format(**fill), v.code, fix, v.source, same,
                                 tied))
    order = {v.name: k for k, v in enumerate(variants)}

    def rank(m):  # matches first, the correct loss first among them, then by error
        score = m.value_error if m.grad_error is None else max(m.value_error, m.grad_error)
        return (not m.matched, m.matched and m.name != "correct", max(score, ROUNDOFF),
                order[m.name])

    return sorted(matches, key=rank)
