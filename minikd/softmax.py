r"""The temperature softmax, its logarithm, and their vector-Jacobian products.

Everything in minikd that turns logits into probabilities goes through the two private kernels
here (``_softmax`` and ``_log_softmax``), so there is one stable implementation: shift each row by
its maximum before ``exp`` (log-sum-exp), which keeps every finite input finite, including gaps of
1e4 at a temperature of 0.1.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array, check_temperature

__all__ = ["log_softmax", "log_softmax_vjp", "softmax", "softmax_vjp"]


def _log_softmax(z, temperature=1.0):
    """log softmax(z / T) over the last axis, without validation. ``z`` is float32 or float64."""
    u = z / temperature if temperature != 1.0 else z  # (..., C)
    shifted = u - u.max(axis=-1, keepdims=True)  # (..., C), max entry 0 per row
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax(z, temperature=1.0):
    """softmax(z / T) over the last axis, without validation."""
    u = z / temperature if temperature != 1.0 else z  # (..., C)
    e = np.exp(u - u.max(axis=-1, keepdims=True))  # (..., C), largest entry exactly 1
    e /= e.sum(axis=-1, keepdims=True)
    return e


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
        T > 0. Larger T gives a softer (higher-entropy) distribution (Hinton et al. 2015, §2).

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
    z = as_float_array(z, "z", "softmax")
    return _softmax(z, check_temperature(temperature, "softmax"))


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
        T > 0.

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
    z = as_float_array(z, "z", "log_softmax")
    return _log_softmax(z, check_temperature(temperature, "log_softmax"))


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
    """
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True)) / temperature


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
    """
    return (dlog_p - p * dlog_p.sum(axis=-1, keepdims=True)) / temperature
