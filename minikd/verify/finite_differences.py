r"""Central finite differences, the numeric side of every gradient check.

:func:`numerical_gradient` differentiates a scalar function one element at a time with the step
:math:`h_i = h\,(\text{scale} + |x_i|)`; pass ``scale=T`` for a loss of :math:`z / T` (a fixed
step is too small for large T and too large near saturation). :func:`numerical_vjp` does the same
for :math:`\langle f(x), \bar y \rangle`, with a *random* upstream :math:`\bar y` (an all-ones
one can make both sides zero: softmax rows sum to a constant). :mod:`minikd.verify.gradcheck`
compares these with an analytic gradient; the helpers below refuse what would let a check pass
without checking (an empty or non-finite ``x``, a vanishing step, an ``f`` that does not return
a finite real scalar).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import as_float_array, check_nonnegative, check_positive, param_error

__all__ = ["DEFAULT_H", "as_float64_copy", "loss_value", "numerical_gradient", "numerical_vjp",
           "step_sizes"]

DEFAULT_H = 1e-5


def as_float64_copy(x, func):
    """A float64 copy of x, finite and non-empty (an empty check would pass vacuously)."""
    return np.array(as_float_array(x, "x", func, min_ndim=0, dtype=np.float64), copy=True)


def step_sizes(x, h, scale, func):
    """The per-element steps h (scale + |x_i|), all > 0 (a zero step divides 0 by 0)."""
    steps = check_positive(h, "h", func) * (check_nonnegative(scale, "scale", func) + np.abs(x))
    if not np.all(steps > 0):
        raise param_error("scale", func, "> 0 where x is 0 (the step h (scale + |x_i|) must "
                          "not vanish)", f"{scale!r} with an entry x = "
                          f"{float(np.ravel(x)[np.argmin(np.ravel(steps))]):g}")
    return steps


def loss_value(f, x, func):
    """``f(x)`` as a float; f must return the loss, a finite real scalar (not a LossGrad)."""
    value = f(x)
    if not (isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.size == 1
                                                and value.dtype.kind in "fiu")):
        hint = "; pass lambda x: loss(x, ...).loss" if isinstance(value, tuple) else ""
        raise TypeError(f"The function f given to {func} must return the loss, a real scalar. "
                        f"Got {type(value).__name__} {str(value)[:30]!r} instead{hint}.")
    value = float(np.asarray(value).reshape(()))
    if not math.isfinite(value):
        raise ValueError(f"The function f given to {func} must be finite around x. Got "
                         f"{value} instead.")
    return value


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
    func = "numerical_gradient"
    x = as_float64_copy(x, func)
    steps = step_sizes(x, h, scale, func)
    grad = np.empty_like(x)
    flat, gflat, sflat = x.reshape(-1), grad.reshape(-1), steps.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + sflat[i]
        f_plus = loss_value(f, x.copy(), func)
        flat[i] = old - sflat[i]
        f_minus = loss_value(f, x.copy(), func)
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
    dout = as_float_array(dout, "dout", "numerical_vjp", min_ndim=0, dtype=np.float64)

    def contracted(v):  # <f(v), dout>, refusing a silent broadcast of a mis-shaped dout
        y = np.asarray(f(v), dtype=np.float64)
        if y.shape != dout.shape:
            raise ValueError(f"The 'dout' parameter of numerical_vjp must be shaped like f(x), "
                             f"{y.shape}. Got shape {dout.shape} instead.")
        return float(np.sum(y * dout))

    return numerical_gradient(contracted, x, h=h, scale=scale)
