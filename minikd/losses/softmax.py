r"""The temperature softmax, its logarithm, and their vector-Jacobian products.

Everything in minikd that turns logits into probabilities goes through one kernel here,
:func:`log_softmax_kernel`: shift each row by its maximum before ``exp`` (log-sum-exp), which
keeps every finite input finite, including gaps of 1e4 at a temperature of 0.1. Probabilities
are its ``exp`` (:func:`softmax_kernel`). The public functions check their arguments once and
call the kernels; the kernels trust their callers (the other losses, the training loop).
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


def log_softmax_kernel(z):
    r"""log softmax over the last axis, without checks: :math:`\log p = s - \log\sum_j e^{s_j}`,
    :math:`s = z - \max_j z_j`. ``z`` is a float array of shape (..., C); returns (..., C)."""
    shifted = z - z.max(axis=-1, keepdims=True)  # (..., C), each row's largest entry exactly 0
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # the sum is in [1, C]


def softmax_kernel(z):
    """softmax over the last axis, without checks: ``exp(log_softmax_kernel(z))``. (..., C)."""
    return np.exp(log_softmax_kernel(z))


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
    return softmax_kernel(z / T)


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
    return log_softmax_kernel(z / T)


def _vjp_inputs(upstream, p, temperature, name, func):
    """Validate a VJP's (upstream gradient, probabilities, T); one float dtype for both arrays."""
    T = check_temperature(temperature, func)
    upstream = as_float_array(upstream, name, func)
    check_logit_range(upstream, T, name, func)  # keeps sums of p · upstream finite
    p = as_float_array(p, "p", func, check_finite=False)
    # probabilities; the slack admits a float32 softmax's round-off above 1
    if not (-1e-6 <= p.min() and p.max() <= 1.0 + 1e-6):  # False for NaN too
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
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True)) / T  # (..., C)


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
    return (dlog_p - p * dlog_p.sum(axis=-1, keepdims=True)) / T  # (..., C)
