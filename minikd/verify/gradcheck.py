r"""Check any gradient, ours or yours, against central finite differences.

* :func:`numerical_gradient` — central differences with a per-element step
  :math:`h_i = h\,(\text{scale} + |x_i|)`; pass ``scale=T`` for a loss of :math:`z / T` (a fixed
  step is too small for large T and too large near saturation). :func:`numerical_vjp` — the
  same for :math:`\langle f(x), \bar y \rangle`, with a *random* upstream :math:`\bar y` (an
  all-ones one can make both sides zero: softmax rows sum to a constant). Both live in
  :mod:`minikd.verify.finite_differences` and are importable from here.
* :func:`normwise_error` — :math:`\max_i |a_i - n_i| / \max(\|a\|_\infty, \|n\|_\infty)`; an
  elementwise relative error reports 1e-3 on saturated softmax entries whose true error is 1e-11.
* :func:`check_gradient`, :func:`assert_gradient` — both together; a failure names the worst
  entry and shows the first (analytic, numeric) pairs. :func:`check_directional` — a few random
  directions instead of every element, for large parameter arrays.

Measured on KD gradients: with ``h = 1e-5``, ``scale = T`` and a tolerance of 1e-5, 0 failures
over 720 cases spanning logit scales 1e-3..1e4 and T in 0.1..100. Not covered: a near-tie between
two *large* logits at a small T (``z = [1e4, 1e4, -1e4]``, ``T = 0.05``), where the step
``1e-5 · |z_i|`` is 2 in ``u = z / T`` and central differences err by about ``(step / T)**2``;
check such a loss with one small step in ``u``, e.g. ``scale = T + 2 * max|z|`` and
``h = 1e-4 * T / scale``, as the minikd loss tests do. At an exact zero gradient (student equal to
teacher) pass a small ``atol``: the normwise error is round-off over round-off there.

A check refuses what would let it pass without checking: an empty or non-finite ``x``, an ``f``
that returns something other than a finite real scalar (a ``LossGrad`` included), a ``dout``
shaped unlike ``f(x)``. NaN or infinity in either gradient makes the error inf.

Examples
--------
>>> import numpy as np
>>> from minikd import gradcheck
>>> f = lambda x: float(np.sum(np.sin(x)))
>>> x = np.array([0.1, 0.2, 0.3])
>>> result = gradcheck.check_gradient(f, x, np.cos(x))
>>> result.ok, result.error < 1e-9
(True, True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_float_array, check_int, check_nonnegative, param_error
from .finite_differences import (
    DEFAULT_H,
    as_float64_copy,
    loss_value,
    numerical_gradient,
    numerical_vjp,
    step_sizes,
)

__all__ = ["GradcheckResult", "assert_gradient", "check_directional", "check_gradient",
           "normwise_error", "numerical_gradient", "numerical_vjp"]

DEFAULT_TOL = 1e-5


def normwise_error(analytic, numeric):
    r"""Normwise relative error :math:`\max|a - n| / \max(\|a\|_\infty, \|n\|_\infty)`.

    Returns 0.0 when both arrays are exactly zero, and inf when the shapes differ or either
    holds a NaN or an infinity (no gradient check passes with those).
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape or not (np.isfinite(a).all() and np.isfinite(n).all()):
        return float("inf")
    if a.size == 0:
        return 0.0
    denom = max(np.max(np.abs(a)), np.max(np.abs(n)))
    if denom == 0.0:
        return 0.0
    return float(np.max(np.abs(a - n)) / denom)


class GradcheckResult(NamedTuple):
    """Outcome of a gradient check.

    Attributes
    ----------
    ok : bool
        ``error <= tol``, or every ``|analytic - numeric| <= atol`` (for gradients that are zero
        or tiny, where a relative error only measures round-off).
    error : float
        Normwise error.
    worst_index : tuple of int
        Index of the entry with the largest ``|analytic - numeric|``.
    analytic, numeric : ndarray
        The two gradients compared.
    tol : float
    """

    ok: bool
    error: float
    worst_index: tuple
    analytic: np.ndarray
    numeric: np.ndarray
    tol: float

    def report(self, name="gradient", n_pairs=5):
        """A human-readable summary: the error, the worst entry and the first few pairs."""
        a, n, w = self.analytic, self.numeric, self.worst_index
        lines = [f"{name}: {'ok' if self.ok else 'FAILED'}, normwise error {self.error:.3e} "
                 f"(tol {self.tol:.1e})"]
        if a.shape != n.shape:
            lines.append(f"  shape mismatch: analytic {a.shape}, numeric {n.shape}")
        elif a.size:
            with np.errstate(invalid="ignore"):  # inf - inf in a failed check
                lines[0] += f", max abs difference {np.max(np.abs(a - n)):.3e}"
            lines.append(f"  worst entry {w}: analytic {a[w]:.10g}, numeric {n[w]:.10g}")
            pairs = zip(a.reshape(-1)[:n_pairs], n.reshape(-1)[:n_pairs], strict=True)
            lines.append("  first pairs (analytic, numeric): "
                         + ", ".join(f"({x:.6g}, {y:.6g})" for x, y in pairs))
        return "\n".join(lines)


def _compare(analytic, numeric, tol, atol=0.0):
    numeric = np.asarray(numeric, dtype=np.float64)
    error = normwise_error(analytic, numeric)
    ok = error <= tol
    if analytic.shape == numeric.shape and analytic.size:
        with np.errstate(invalid="ignore"):  # inf - inf: the check fails anyway (error is inf)
            diff = np.abs(analytic - numeric)
        diff = np.where(np.isnan(diff), np.inf, diff)
        worst = np.unravel_index(np.argmax(diff), analytic.shape)
        worst = tuple(int(i) for i in worst)
        ok = ok or bool(diff.max() <= atol)
    else:
        worst = ()
    return GradcheckResult(bool(ok), error, worst, analytic, numeric, tol)


def _analytic(analytic, func):
    """The gradient under test as float64; NaN and inf are kept (they fail the check)."""
    return as_float_array(analytic, "analytic", func, min_ndim=0, dtype=np.float64,
                          allow_empty=True, check_finite=False)


def check_gradient(f, x, analytic, *, dout=None, h=DEFAULT_H, scale=1.0, tol=DEFAULT_TOL,
                   atol=0.0):
    """Compare an analytic gradient with central finite differences.

    Parameters
    ----------
    f : callable
        Scalar function ``f(x) -> float``, or, with ``dout``, an array-valued one.
    x : array_like
        Point of evaluation.
    analytic : array_like, shaped like ``x``
        The gradient to check (of ``f``, or of ``<f, dout>`` when ``dout`` is given).
    dout : array_like, optional
        Upstream gradient for an array-valued ``f`` (a random one, please).
    h, scale : float
        Step parameters, see :func:`numerical_gradient`.
    tol : float, default 1e-5
        Largest acceptable normwise error.
    atol : float, default 0.0
        Also pass when every ``|analytic - numeric| <= atol``. At an exact zero gradient (a
        student equal to its teacher) the normwise error is round-off over round-off, about 1;
        a small ``atol`` (1e-10) accepts that without loosening ``tol``.

    Returns
    -------
    GradcheckResult
    """
    func = "check_gradient"
    analytic = _analytic(analytic, func)
    tol = check_nonnegative(tol, "tol", func)
    atol = check_nonnegative(atol, "atol", func)
    if dout is None:
        numeric = numerical_gradient(f, x, h=h, scale=scale)
    else:
        numeric = numerical_vjp(f, x, dout, h=h, scale=scale)
    return _compare(analytic, numeric, tol, atol)


def assert_gradient(f, x, analytic, *, dout=None, h=DEFAULT_H, scale=1.0, tol=DEFAULT_TOL,
                    atol=0.0, name="gradient"):
    """Like :func:`check_gradient`, but raise ``AssertionError`` with a report on failure.

    Returns the :class:`GradcheckResult` when the check passes.
    """
    result = check_gradient(f, x, analytic, dout=dout, h=h, scale=scale, tol=tol, atol=atol)
    if not result.ok:
        raise AssertionError(result.report(name))
    return result


def check_directional(f, x, analytic, *, n_directions=3, h=DEFAULT_H, tol=DEFAULT_TOL, rng=None):
    r"""Check a gradient along random unit directions: cheap for large parameter arrays.

    .. math::

        \frac{f(x + \epsilon v) - f(x - \epsilon v)}{2\epsilon} \approx \langle \nabla f, v\rangle,
        \qquad \epsilon = h\,(1 + \|x\|_\infty)

    Parameters
    ----------
    f : callable
        Scalar function ``f(x) -> float``.
    x, analytic : array_like of the same shape
    n_directions : int, default 3
    h, tol : float
    rng : int, numpy.random.Generator or None

    Returns
    -------
    GradcheckResult
        ``analytic`` and ``numeric`` hold the projected derivatives, one per direction.
    """
    func = "check_directional"
    rng = np.random.default_rng(rng)
    x = as_float64_copy(x, func)
    g = _analytic(analytic, func)
    if g.shape != x.shape:
        raise param_error("analytic", func, f"an array of shape {x.shape} (like x)",
                          f"shape {g.shape}")
    n_directions = check_int(n_directions, "n_directions", func, low=1)
    tol = check_nonnegative(tol, "tol", func)
    eps = float(step_sizes(np.max(np.abs(x)), h, 1.0, func))  # h (1 + ||x||_inf)
    proj_a, proj_n = [], []
    for _ in range(n_directions):
        v = rng.standard_normal(x.shape)
        v /= np.linalg.norm(v)
        proj_a.append(float(np.sum(g * v)))
        f_plus, f_minus = loss_value(f, x + eps * v, func), loss_value(f, x - eps * v, func)
        proj_n.append((f_plus - f_minus) / (2.0 * eps))
    return _compare(np.array(proj_a), np.array(proj_n), tol)
