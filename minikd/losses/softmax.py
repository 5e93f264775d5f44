r"""The temperature softmax, its logarithm, and their vector-Jacobian products.

Everything in minikd that turns logits into probabilities goes through one private kernel here,
``_softmax_columns``, so there is one stable implementation: shift each row by its maximum before
``exp`` (log-sum-exp), which keeps every finite input finite, including gaps of 1e4 at a
temperature of 0.1. The kernel works on a class-major layout (classes ahead of positions, built
by ``_columns``), where NumPy vectorises the reductions over short rows; ``_softmax``,
``_log_softmax`` and ``_softmax_and_log`` wrap it for (..., C) arrays.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    as_float_array,
    check_logit_range,
    check_same_shape,
    check_temperature,
    common_float_dtype,
    param_error,
)

__all__ = ["log_softmax", "log_softmax_vjp", "softmax", "softmax_vjp"]


_SHORT_ROW = 64  # rows up to this many classes are copied class-major by _columns


def _row_max(a):
    """max over the last axis, keepdims. (..., C) -> (..., 1).

    NumPy reduces a short last axis one row at a time (about 18 us for 256 x 10); reducing the
    leading axis of the contiguous transpose is vectorised across rows (about 3 us, copy included).
    """
    C = a.shape[-1]
    if C > _SHORT_ROW:
        return a.max(axis=-1, keepdims=True)
    flat_t = np.ascontiguousarray(a.reshape(-1, C).T)  # (C, M)
    return flat_t.max(axis=0).reshape(a.shape[:-1] + (1,))


def _row_sum(a):
    """sum over the last axis as a BLAS matrix-vector product. (..., C) -> (...,)."""
    return a @ np.ones(a.shape[-1], dtype=a.dtype)


def _columns(*arrays):
    """(..., C) arrays of one shape, each turned class-major and stacked: (K, C, M).

    K is the number of arrays and M the number of positions (rows); block ``k`` is array k's
    (C, M) transpose. Short rows are copied, each block C-contiguous: NumPy reduces a short last
    axis one row at a time (about 18 us for 256 x 10), a class axis ahead of the positions
    vectorised across them (about 2 us, the copy included). Long rows stay a transposed view
    (F-ordered blocks), whose class reductions already run along contiguous memory.
    """
    C = arrays[0].shape[-1]
    rows = [a.reshape(-1, C) for a in arrays]  # (M, C) each
    if C > _SHORT_ROW:
        stacked = rows[0][None] if len(rows) == 1 else np.stack(rows)  # (K, M, C)
        return stacked.transpose(0, 2, 1)
    stacked = np.concatenate(rows).reshape(len(rows), -1, C)  # (K, M, C)
    return np.ascontiguousarray(stacked.transpose(0, 2, 1))  # (K, C, M)


def _rows(a, shape):
    """One (C, M) block of :func:`_columns` back as a C-contiguous (..., C) array of ``shape``."""
    return np.ascontiguousarray(a.T).reshape(shape)


def _softmax_columns(z, temperature=1.0):
    """softmax(z / T) over the class axis -2 of class-major logits ``z`` (..., C, M).

    The one softmax of minikd: every other kernel calls it. ``z`` is a (C, M) block or the
    (K, C, M) stack of :func:`_columns`; ``temperature`` is a float or an array broadcasting
    against ``z`` (a (K, 1, 1) array softens each block at its own temperature).

    Returns ``(p, shifted, log_norm)`` with ``log p = shifted - log_norm``: ``p`` and ``shifted``
    of ``z``'s shape, ``log_norm`` of shape (..., M). The losses use the pieces to avoid forming
    ``log p`` (an extra pass) when a column sum will do. Shifting by the column maximum before
    ``exp`` (log-sum-exp) keeps every finite input finite, including gaps of 1e4 at a
    temperature of 0.1.
    """
    # the ufuncs' reduce: ndarray.max/sum add a Python wrapper (~0.5 us a call, per step)
    shifted = z - np.maximum.reduce(z, axis=-2, keepdims=True)  # (..., C, M); max(z/T) = max(z)/T
    if isinstance(temperature, np.ndarray) or temperature != 1.0:
        shifted /= np.asarray(temperature, shifted.dtype)
    e = np.exp(shifted)  # (..., C, M), largest entry of each column exactly 1
    norm = np.add.reduce(e, axis=-2, keepdims=True)  # (..., 1, M), in [1, C]
    e /= norm
    return e, shifted, np.log(norm[..., 0, :])


def _log_softmax(z, temperature=1.0):
    """log softmax(z / T) over the last axis, without validation. ``z`` is float32 or float64."""
    _, shifted, log_norm = _softmax_columns(_columns(z)[0], temperature)  # (C, M), (M,)
    shifted -= log_norm
    return _rows(shifted, z.shape)


def _softmax(z, temperature=1.0):
    """softmax(z / T) over the last axis, without validation."""
    return _rows(_softmax_columns(_columns(z)[0], temperature)[0], z.shape)


def _softmax_and_log(z, temperature=1.0):
    """(softmax(z / T), log softmax(z / T)) with a single ``exp``, without validation."""
    p, shifted, log_norm = _softmax_columns(_columns(z)[0], temperature)  # (C, M) ...
    shifted -= log_norm
    return _rows(p, z.shape), _rows(shifted, z.shape)


def softmax(z, *, temperature=1.0):
    r"""Temperature softmax over the last axis.

    .. math::

        p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}, \qquad
        \frac{\partial p_i}{\partial z_j} = \frac{1}{T}\, p_i (\delta_{ij} - p_j)

    Computed as ``exp(z/T - max(z/T))`` normalised, so every finite input gives a finite result.
    The Jacobian is applied by :func:`softmax_vjp`.

    Parameters
    ----------
    z : array_like of shape (..., C)
        Logits.
    temperature : float, default 1.0
        T in [1e-6, 1e6]. Larger T gives a softer (higher-entropy) distribution
        (Hinton et al. 2015, §2).

    Returns
    -------
    p : ndarray of shape (..., C)
        Probabilities; each row sums to 1. float32 if ``z`` is float32, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(softmax([2.0, 1.0, 0.0], temperature=2.0), 4)
    array([0.5065, 0.3072, 0.1863])
    """
    T = check_temperature(temperature, "softmax")
    z = as_float_array(z, "z", "softmax")
    check_logit_range(z, T, "z", "softmax")
    return _softmax(z, T)


def log_softmax(z, *, temperature=1.0):
    r"""Logarithm of the temperature softmax over the last axis.

    .. math::

        \log p_i = \frac{z_i}{T} - \log \sum_j \exp(z_j / T), \qquad
        \frac{\partial \log p_i}{\partial z_j} = \frac{1}{T} (\delta_{ij} - p_j)

    Parameters
    ----------
    z : array_like of shape (..., C)
        Logits.
    temperature : float, default 1.0
        T in [1e-6, 1e6] (wider values overflow in float arithmetic).

    Returns
    -------
    log_p : ndarray of shape (..., C)
        Log-probabilities, finite for every finite input.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(log_softmax([[0.0, 1e4]], temperature=0.1), 4)
    array([[-100000.,       0.]])
    """
    T = check_temperature(temperature, "log_softmax")
    z = as_float_array(z, "z", "log_softmax")
    check_logit_range(z, T, "z", "log_softmax")
    return _log_softmax(z, T)


def _vjp_inputs(upstream, p, temperature, name, func):
    """Validate a VJP's (upstream gradient, probabilities, T); one float dtype for both arrays."""
    T = check_temperature(temperature, func)
    upstream = as_float_array(upstream, name, func)
    check_logit_range(upstream, T, name, func)  # keeps sums of p · upstream finite
    p = as_float_array(p, "p", func, check_finite=False)
    # probabilities; the slack admits a float32 softmax's round-off above 1
    if not (-1e-6 <= np.minimum.reduce(p, axis=None) and np.maximum.reduce(p, axis=None)
            <= 1.0 + 1e-6):  # False for NaN too
        raise param_error("p", func, "probabilities in [0, 1] (a softmax output)",
                          f"values in [{float(np.min(p)):.3g}, {float(np.max(p)):.3g}]")
    check_same_shape(upstream, p, name, "p", func)
    dtype = common_float_dtype(upstream, p)
    return upstream.astype(dtype, copy=False), p.astype(dtype, copy=False), T


def softmax_vjp(dp, p, *, temperature=1.0):
    r"""Vector-Jacobian product of the temperature softmax: the gradient with respect to z.

    .. math::

        \frac{\partial L}{\partial z_j} = \frac{1}{T}\, p_j
            \Big(\frac{\partial L}{\partial p_j} - \sum_i p_i \frac{\partial L}{\partial p_i}\Big)

    Parameters
    ----------
    dp : ndarray of shape (..., C)
        Upstream gradient dL/dp.
    p : ndarray of shape (..., C)
        The softmax output ``softmax(z, temperature=T)``.
    temperature : float, default 1.0

    Returns
    -------
    dz : ndarray of shape (..., C)

    Examples
    --------
    >>> import numpy as np
    >>> p = softmax([[0.0, 0.0]])
    >>> softmax_vjp([[1.0, -1.0]], p)
    array([[ 0.5, -0.5]])
    """
    dp, p, T = _vjp_inputs(dp, p, temperature, "dp", "softmax_vjp")
    pdp = p * dp  # (..., C)
    return (pdp - p * _row_sum(pdp)[..., None]) / T


def log_softmax_vjp(dlog_p, p, *, temperature=1.0):
    r"""Vector-Jacobian product of the temperature log-softmax: the gradient with respect to z.

    .. math::

        \frac{\partial L}{\partial z_j} = \frac{1}{T}
            \Big(\frac{\partial L}{\partial \log p_j}
                 - p_j \sum_i \frac{\partial L}{\partial \log p_i}\Big)

    Parameters
    ----------
    dlog_p : ndarray of shape (..., C)
        Upstream gradient dL/d(log p).
    p : ndarray of shape (..., C)
        The softmax output ``softmax(z, temperature=T)``.
    temperature : float, default 1.0

    Returns
    -------
    dz : ndarray of shape (..., C)

    Examples
    --------
    >>> import numpy as np
    >>> p = softmax([[0.0, 0.0]], temperature=2.0)
    >>> log_softmax_vjp([[1.0, 0.0]], p, temperature=2.0)
    array([[ 0.25, -0.25]])
    """
    dlog_p, p, T = _vjp_inputs(dlog_p, p, temperature, "dlog_p", "log_softmax_vjp")
    return (dlog_p - p * _row_sum(dlog_p)[..., None]) / T
