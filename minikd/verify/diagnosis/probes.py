r"""Inputs that tell KD-loss variants apart: :func:`diagnose_inputs`, and the probes of a tie.

Two variants of :mod:`minikd.verify.diagnosis.catalog` can give the same number on some inputs and
not on others: at T = 1 a missing :math:`T^2` is invisible, at alpha = 0.5 swapped weights are,
with one row ``reduction='sum'`` is ``'batchmean'``, and Keras' clipping to
:math:`[10^{-7}, 1]` changes nothing until a probability falls below :math:`10^{-7}`.

* :func:`diagnose_inputs` draws inputs on which every two variants that are not the same formula
  differ in value by at least 1 % (ten times :func:`minikd.diagnose`'s default tolerance), for
  the user to run through their own loss.
* :func:`probes` changes a user's inputs one respect at a time (T, alpha, the batch size, a
  clipped probability, the logits), then all at once: :func:`minikd.diagnose` calls two
  variants the same formula when no probe separates them, and otherwise names the first that
  does.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..._validation import check_int, check_temperature, check_unit_interval, param_error
from .catalog import Inputs, catalog, distance, error_floors, evaluate, value_error

__all__ = ["MIN_SEPARATION", "ROUNDOFF", "diagnose_inputs", "probes", "random_logits"]

MIN_SEPARATION = 0.01  # diagnose_inputs: every two different variants differ by this much
ROUNDOFF = 1e-9  # two variants closer than this on every input tried are the same formula
PROBE_SEED = 20260516  # the fixed seed of the probes' random logits
PROBE_ROWS = 8  # the probes change the first rows of the user's batch only


def random_logits(rng, n_samples, n_classes, temperature, *, clip_row=True):
    r"""Student and teacher logits (N, C) of spread :math:`2T`, with one row where Keras clips.

    With ``clip_row``, in row 0 the teacher's most likely class gets a student logit
    :math:`20T` below the largest of the row, so the student's probability there is below
    :math:`e^{-20} < 10^{-7}`; without it the spread is :math:`T`, and no probability is
    likely to fall below :math:`10^{-7}`.
    """
    T = temperature
    spread = 2 * T if clip_row else T
    z_s = rng.normal(size=(n_samples, n_classes)) * spread  # (N, C)
    z_t = rng.normal(size=(n_samples, n_classes)) * spread  # (N, C)
    if clip_row:
        k = int(np.argmax(z_t[0]))
        z_s[0, k] = z_s[0].max() - 20 * T
    return z_s, z_t


def _smallest_gap(variants, inputs):
    """(value error, i, j) of the closest two variants that are not the same formula.

    Two variants that agree to 1e-9 on ``inputs`` are the same formula only when they also
    agree on every probe (other T, alpha, batch size, a clipped probability, other logits);
    otherwise the inputs' parameters tie them (C = T², say) and their gap is 0.
    """
    results = evaluate(variants, inputs)
    floors = error_floors(results[0], inputs)  # catalog()[0] is the correct loss
    probed = []
    gap = (math.inf, 0, 0)
    for j, b in enumerate(results):
        for i, a in enumerate(results[:j]):
            e = value_error(a.loss, b.loss, floors[0])
            if e >= gap[0]:
                continue
            if distance(a, b, floors) <= ROUNDOFF:
                if not probed:
                    for _, p in probes(inputs, with_default=False):
                        res = evaluate(variants, p)
                        probed.append((res, error_floors(res[0], p)))
                if all(distance(r[i], r[j], f) <= ROUNDOFF for r, f in probed):
                    continue  # the same formula
            gap = (e, i, j)
    return gap


def diagnose_inputs(rng=None, *, n_samples=5, n_classes=7, temperature=3.0, alpha=0.7):
    r"""Inputs on which every two different variants differ, to run through your own KD loss.

    Student and teacher logits are drawn with spread :math:`2T` (:func:`random_logits`: one row
    has a student probability below :math:`10^{-7}`, where Keras clips), labels uniformly.
    Draws are repeated until every two variants of :func:`minikd.diagnose`'s catalog that are
    not the same formula differ in value by at least 1 %,
    :math:`|v_a - v_b| / \max(|v_a|, |v_b|, f_v) \ge 0.01`, so that the value alone names one
    variant (and the gradient confirms it).

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        Seed or generator (``np.random.default_rng(rng)``).
    n_samples : int, default 5
        N, the rows, in [2, 1000].
    n_classes : int, default 7
        C, the classes, in [2, 1000] and not N (C = N hides a mean over the wrong axis).
    temperature : float, default 3.0
        T, not 1 (where a missing T² is invisible).
    alpha : float in (0, 1) or None, default 0.7
        The soft term's weight, not 0.5 (where swapped weights are invisible); None for a loss
        made of the soft term alone.

    Returns
    -------
    dict
        ``student_logits``, ``teacher_logits`` (ndarray of float64 of shape (N, C)), ``labels``
        (ndarray of int64 of shape (N,)), ``temperature`` (float) and ``alpha`` (float or None):
        the keys of ``minikd diagnose --make-inputs``.

    Raises
    ------
    ValueError
        When 100 draws do not separate every pair (e.g. C = T², where ``reduction_mean`` and
        ``missing_t2`` are the same formula); the message names the closest pair.

    Examples
    --------
    >>> x = diagnose_inputs(rng=0)
    >>> x["student_logits"].shape, x["labels"].shape, x["temperature"], x["alpha"]
    ((5, 7), (5,), 3.0, 0.7)
    """
    func = "diagnose_inputs"
    N = check_int(n_samples, "n_samples", func, low=2, high=1000)
    C = check_int(n_classes, "n_classes", func, low=2, high=1000)
    if C == N:
        raise param_error("n_classes", func, f"an int other than n_samples={N} (C = N hides a "
                          "mean over the wrong axis)", repr(C))
    T = check_temperature(temperature, func)
    if T == 1.0:
        raise param_error("temperature", func, "a float in the range [1e-6, 1e6] other than 1 "
                          "(at T = 1 a missing T² is invisible)", repr(T))
    if alpha is not None:
        alpha = check_unit_interval(alpha, "alpha", func)
        if alpha in (0.0, 0.5, 1.0):
            raise param_error("alpha", func, "None or a float in (0, 1) other than 0.5 (at 0 or "
                              "1 a term vanishes, at 0.5 swapped weights are invisible)",
                              repr(alpha))
    rng = np.random.default_rng(rng)
    variants = catalog(alpha is not None)
    best = (-1.0, 0, 0)
    for _ in range(100):
        z_s, z_t = random_logits(rng, N, C, T)
        labels = rng.integers(0, C, size=N)  # (N,)
        gap = _smallest_gap(variants, Inputs(z_s, z_t, labels, T, alpha))
        if gap[0] >= MIN_SEPARATION:
            return {"student_logits": z_s, "teacher_logits": z_t, "labels": labels,
                    "temperature": T, "alpha": alpha}
        best = max(best, gap)
        if gap[0] <= ROUNDOFF:  # tied by the parameters (C = T², say): no draw will help
            break
    a, b = variants[best[1]].name, variants[best[2]].name
    raise ValueError(f"diagnose_inputs could not separate '{a}' from '{b}' by 1 % with "
                     f"n_samples={N}, n_classes={C}, temperature={T!r}, alpha={alpha!r}; "
                     "choose another temperature or shape.")


@functools.lru_cache(maxsize=2)
def _default_inputs(alpha_given):
    """diagnose_inputs(PROBE_SEED) as an Inputs (computed once per alpha setting)."""
    x = diagnose_inputs(PROBE_SEED, alpha=0.7 if alpha_given else None)
    for key in ("student_logits", "teacher_logits", "labels"):
        x[key].setflags(write=False)  # shared by every call: nobody may write into it
    return Inputs(x["student_logits"], x["teacher_logits"], x["labels"], x["temperature"],
                  x["alpha"])


def probes(inputs, *, with_default=True):
    """The user's inputs changed in one respect each, then in all: [(what changed, Inputs)].

    In order: another temperature; another alpha (when one is given); one or two more rows
    (copies of row 0); other random logits of the same shape (none clipped); a student
    probability below 1e-7 in row 0; and, with ``with_default``, the inputs of
    ``diagnose_inputs(PROBE_SEED)``. Only the first ``PROBE_ROWS`` rows of a larger batch are
    kept (a tie that a probe breaks on them is broken, and it keeps a large batch cheap).
    Deterministic (a fixed seed).
    """
    n_user = inputs.student_logits.shape[0]
    x = inputs._replace(student_logits=inputs.student_logits[:PROBE_ROWS],
                        teacher_logits=inputs.teacher_logits[:PROBE_ROWS],
                        labels=None if inputs.labels is None else inputs.labels[:PROBE_ROWS])
    N, C = x.student_logits.shape
    T = x.temperature
    T2 = 3.0 if abs(math.log(T / 3.0)) > 0.2 else 5.5
    out = [(f"a temperature other than T = {T:g} (e.g. T = {T2:g})", x._replace(temperature=T2))]
    if x.alpha is not None:
        a2 = 0.7 if abs(x.alpha - 0.7) > 0.1 else 0.3
        out.append((f"an alpha other than {x.alpha:g} (e.g. {a2:g})", x._replace(alpha=a2)))
    extra = 2 if N + 1 == C else 1  # copies of row 0: only the batch size changes
    rows = list(range(N)) + [0] * extra
    out.append((f"a batch of another size than N = {n_user} (e.g. one more row)",
                x._replace(student_logits=x.student_logits[rows],
                           teacher_logits=x.teacher_logits[rows],
                           labels=None if x.labels is None else x.labels[rows])))
    rng = np.random.default_rng(PROBE_SEED)
    z_s, z_t = random_logits(rng, N, C, T, clip_row=False)
    labels = None if x.labels is None else rng.integers(0, C, size=N)
    out.append(("other logits (e.g. random ones, student and teacher different)",
                x._replace(student_logits=z_s, teacher_logits=z_t, labels=labels)))
    z_s = x.student_logits.copy()
    z_s[0, int(np.argmax(x.teacher_logits[0]))] = z_s[0].max() - 20 * T
    out.append(("a student probability below 1e-7, where Keras clips (e.g. one logit 20 T "
                "below the largest of its row)", x._replace(student_logits=z_s)))
    if with_default:
        out.append(("inputs like minikd.diagnose_inputs() (T, alpha, shape and logits changed)",
                    _default_inputs(x.alpha is not None)))
    return out
