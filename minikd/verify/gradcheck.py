r"""Check any gradient, ours or yours, against central finite differences.

The three pieces:

* :func:`numerical_gradient` — the gradient of a scalar function by central differences,
  :math:`g_i \approx (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i)`, with a per-element step
  :math:`h_i = h\,(\text{scale} + |x_i|)`. A temperature loss depends on :math:`z / T`, so pass
  ``scale=T``: a fixed step is too small for large T and too large near saturation.
* :func:`numerical_vjp` — the same for an array-valued function contracted with an upstream
  gradient :math:`\bar y`: the gradient of :math:`\langle f(x), \bar y \rangle`. Use a *random*
  :math:`\bar y`; an all-ones one can make both sides zero (softmax rows sum to a constant).
* :func:`normwise_error` — :math:`\max_i |a_i - n_i| / \max(\|a\|_\infty, \|n\|_\infty)`. An
  elementwise relative error reports 1e-3 on saturated softmax entries whose true error is 1e-11;
  the normwise error does not.

:func:`check_gradient` and :func:`assert_gradient` put them together and, on failure, name the
worst entry and show the first few (analytic, numeric) pairs. :func:`check_directional` checks
large parameter arrays along a few random directions instead of element by element.

Measured on KD gradients (``STYLE.md``): with ``h = 1e-5``, ``scale = T`` and a tolerance of 1e-5,
0 failures over 720 cases spanning logit scales 1e-3..1e4 and T in 0.1..100.

One case that rule does not cover: a near-tie between two *large* logits at a small T (say
``z = [1e4, 1e4, -1e4]``, ``T = 0.05``). The step ``1e-5 · |z_i|`` is then 2 in ``u = z / T``,
where the softmax is curved, and central differences err by about ``(step / T)**2``. A loss of
``z / T`` is best checked with the same small step in ``u`` for every entry, e.g.
``scale = T + 2 * max|z|`` and ``h = 1e-4 * T / scale`` (a step of 1e-4..1.5e-4 in ``u``); the
minikd loss tests do that. At an exact zero gradient (student equal to teacher) pass a small
``atol``: the normwise error is round-off over round-off there.

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

__all__ = [
    "GradcheckResult",
    "assert_gradient",
    "check_directional",
    "check_gradient",
    "normwise_error",
    "numerical_gradient",
    "numerical_vjp",
]

DEFAULT_H = 1e-5
DEFAULT_TOL = 1e-5


def _as_float64_copy(x):
    x = np.array(x, dtype=np.float64, copy=True)
    if not np.isfinite(x).all():
        raise ValueError("gradcheck needs a finite input x; got NaN or inf entries.")
    return x


def _steps(x, h, scale):
    if not (h > 0 and scale >= 0):
        raise ValueError(f"gradcheck needs h > 0 and scale >= 0. Got h={h}, scale={scale}.")
    return h * (scale + np.abs(x))


def numerical_gradient(f, x, *, h=DEFAULT_H, scale=1.0):
    r"""Central-difference gradient of a scalar function.

    .. math::

        g_i = \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i}, \qquad h_i = h\,(\text{scale} + |x_i|)

    Parameters
    ----------
    f : callable
        ``f(x) -> float``. Called with a float64 array shaped like ``x``; ``x`` itself is never
        modified (the function gets a private copy).
    x : array_like of any shape
        Point at which to differentiate.
    h : float, default 1e-5
        Relative step.
    scale : float, default 1.0
        Absolute part of the step; pass the temperature T for a loss of ``z / T``.

    Returns
    -------
    g : ndarray of float64, shaped like ``x``
    """
    x = _as_float64_copy(x)
    steps = _steps(x, h, scale)
    grad = np.empty_like(x)
    flat, gflat, sflat = x.reshape(-1), grad.reshape(-1), steps.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + sflat[i]
        f_plus = float(f(x.copy()))
        flat[i] = old - sflat[i]
        f_minus = float(f(x.copy()))
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2.0 * sflat[i])
    return grad


def numerical_vjp(f, x, dout, *, h=DEFAULT_H, scale=1.0):
    r"""Central-difference vector-Jacobian product of an array-valued function.

    .. math::

        (\bar y^\top J)_i = \frac{\langle f(x + h_i e_i) - f(x - h_i e_i), \bar y\rangle}{2 h_i}

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray`` shaped like ``dout``.
    x : array_like of any shape
    dout : array_like
        Upstream gradient :math:`\bar y`; use a random one.
    h, scale : float
        As in :func:`numerical_gradient`.

    Returns
    -------
    g : ndarray of float64, shaped like ``x``
    """
    dout = np.asarray(dout, dtype=np.float64)
    return numerical_gradient(lambda v: float(np.sum(np.asarray(f(v)) * dout)), x, h=h,
                              scale=scale)


def normwise_error(analytic, numeric):
    r"""Normwise relative error :math:`\max|a - n| / \max(\|a\|_\infty, \|n\|_\infty)`.

    Returns 0.0 when both arrays are exactly zero, and inf when the shapes differ.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
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
        verdict = "ok" if self.ok else "FAILED"
        lines = [f"{name}: {verdict}, normwise error {self.error:.3e} (tol {self.tol:.1e})"]
        if self.analytic.shape == self.numeric.shape and self.analytic.size:
            lines[0] += f", max abs difference {np.max(np.abs(self.analytic - self.numeric)):.3e}"
        if self.analytic.shape != self.numeric.shape:
            lines.append(f"  shape mismatch: analytic {self.analytic.shape}, "
                         f"numeric {self.numeric.shape}")
            return "\n".join(lines)
        if self.analytic.size:
            w = self.worst_index
            lines.append(f"  worst entry {w}: analytic {self.analytic[w]:.10g}, "
                         f"numeric {self.numeric[w]:.10g}")
            pairs = zip(self.analytic.reshape(-1)[:n_pairs], self.numeric.reshape(-1)[:n_pairs],
                        strict=True)
            lines.append("  first pairs (analytic, numeric): "
                         + ", ".join(f"({a:.6g}, {n:.6g})" for a, n in pairs))
        return "\n".join(lines)


def _compare(analytic, numeric, tol, atol=0.0):
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    error = normwise_error(analytic, numeric)
    ok = error <= tol
    if analytic.shape == numeric.shape and analytic.size:
        diff = np.abs(analytic - numeric)
        worst = np.unravel_index(np.argmax(diff), analytic.shape)
        worst = tuple(int(i) for i in worst)
        ok = ok or bool(diff.max() <= atol)
    else:
        worst = ()
    return GradcheckResult(bool(ok), error, worst, analytic, numeric, tol)


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
    rng = np.random.default_rng(rng)
    x = _as_float64_copy(x)
    g = np.asarray(analytic, dtype=np.float64)
    eps = h * (1.0 + np.max(np.abs(x)))
    proj_a, proj_n = [], []
    for _ in range(n_directions):
        v = rng.standard_normal(x.shape)
        v /= np.linalg.norm(v)
        proj_a.append(float(np.sum(g * v)))
        proj_n.append((float(f(x + eps * v)) - float(f(x - eps * v))) / (2.0 * eps))
    return _compare(np.array(proj_a), np.array(proj_n), tol)
