r"""Layers as pairs of pure functions: ``*_forward -> (out, cache)``, ``*_backward(dout, cache)``.

Linear, ReLU, tanh, and inverted dropout (written in :mod:`minikd.nn.dropout`, re-exported here;
backpropagation as in Rumelhart, Hinton & Williams
1986; the cs231n layer API; derivations in ``docs/derivations/backprop.md``). Shape letters: N
batch, D inputs, H outputs. Each public function validates its arguments and returns its kernel
``<name>_kernel``, which takes them already checked (float arrays of one dtype, a
``numpy.random.Generator``), never writes to them and returns fresh arrays.
:class:`minikd.nn.MLP` is built from the kernels.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, common_float_dtype, param_error
from .dropout import (  # re-exported: the fourth layer, in its own module
    check_dout,
    dropout_backward,
    dropout_backward_kernel,
    dropout_forward,
    dropout_forward_kernel,
)

__all__ = ["dropout_backward", "dropout_backward_kernel", "dropout_forward",
           "dropout_forward_kernel", "linear_backward", "linear_backward_kernel",
           "linear_forward", "linear_forward_kernel", "relu_backward", "relu_backward_kernel",
           "relu_forward", "relu_forward_kernel", "tanh_backward", "tanh_backward_kernel",
           "tanh_forward", "tanh_forward_kernel"]


def linear_forward(x, W, b):
    r"""Affine layer :math:`y = x W + b`.

    .. math::

        y_{nh} = \sum_d x_{nd} W_{dh} + b_h, \qquad
        \frac{\partial L}{\partial x} = \bar y W^\top,\;
        \frac{\partial L}{\partial W} = x^\top \bar y,\;
        \frac{\partial L}{\partial b_h} = \sum_n \bar y_{nh}

    Parameters
    ----------
    x : array_like of shape (N, D)
        Inputs, one row per sample.
    W : array_like of shape (D, H)
        Weights (rows index inputs, so the product is ``x @ W``).
    b : array_like of shape (H,)
        Bias.

    Returns
    -------
    out : ndarray of shape (N, H)
        float32 when x, W and b are all float32, else float64.
    cache : tuple
        ``(x, W)`` for :func:`linear_backward`.

    Examples
    --------
    >>> out, _ = linear_forward([[1.0, 2.0]], [[1.0, 0.0], [0.5, -1.0]], [0.0, 0.25])
    >>> out
    array([[ 2.  , -1.75]])
    """
    func = "linear_forward"
    x = as_float_array(x, "x", func, ndim=2, allow_empty=True)
    W = as_float_array(W, "W", func, ndim=2, allow_empty=True)
    b = as_float_array(b, "b", func, ndim=1, allow_empty=True)
    dtype = common_float_dtype(x, W, b)
    x, W, b = x.astype(dtype, copy=False), W.astype(dtype, copy=False), b.astype(dtype, copy=False)
    if W.shape[0] != x.shape[1]:
        raise param_error("W", func, f"an array with {x.shape[1]} rows (x has {x.shape[1]} "
                          "columns)", f"shape {W.shape}")
    if b.shape != (W.shape[1],):
        raise param_error("b", func, f"an array of shape ({W.shape[1]},)", f"shape {b.shape}")
    return linear_forward_kernel(x, W, b)


def linear_forward_kernel(x, W, b):
    """:func:`linear_forward` on checked arrays of one float dtype."""
    out = x @ W  # (N, H)
    out += b
    return out, (x, W)


def linear_backward(dout, cache):
    r"""Gradients of the affine layer :math:`y = x W + b`.

    .. math::

        \bar x = \bar y W^\top, \qquad \bar W = x^\top \bar y, \qquad
        \bar b = \mathbf{1}^\top \bar y

    Parameters
    ----------
    dout : array_like of shape (N, H)
        Upstream gradient :math:`\bar y = \partial L / \partial y`.
    cache : tuple
        From :func:`linear_forward`.

    Returns
    -------
    dx : ndarray of shape (N, D)
    dW : ndarray of shape (D, H)
    db : ndarray of shape (H,)

    Examples
    --------
    >>> out, cache = linear_forward([[1.0, 2.0]], [[1.0, 0.0], [0.5, -1.0]], [0.0, 0.25])
    >>> dx, dW, db = linear_backward([[1.0, -1.0]], cache)
    >>> dx, dW, db
    (array([[1. , 1.5]]), array([[ 1., -1.],
           [ 2., -2.]]), array([ 1., -1.]))
    """
    if not (isinstance(cache, tuple) and len(cache) == 2
            and all(isinstance(a, np.ndarray) and a.ndim == 2 for a in cache)):
        raise param_error("cache", "linear_backward", "the cache returned by linear_forward",
                          type(cache).__name__, TypeError)
    x, W = cache
    dout = check_dout(dout, np.empty((x.shape[0], W.shape[1]), W.dtype), "linear_backward")
    return linear_backward_kernel(dout, cache)


def linear_backward_kernel(dout, cache, *, input_grad=True):
    """:func:`linear_backward` on checked arrays; ``dx`` is None when ``input_grad`` is False
    (a network's first layer: nothing needs the gradient on the data)."""
    x, W = cache
    dx = dout @ W.T if input_grad else None  # (N, D)
    dW = x.T @ dout  # (D, H)
    db = dout.sum(axis=0)  # (H,)
    return dx, dW, db


def relu_forward(x):
    r"""Rectified linear unit :math:`y = \max(x, 0)`.

    .. math::

        y = \max(x, 0), \qquad \bar x = \bar y \odot [x > 0]

    The derivative at exactly 0 is taken as 0 (PyTorch does the same).

    Parameters
    ----------
    x : array_like of shape (N, H)

    Returns
    -------
    out : ndarray of shape (N, H)
    cache : ndarray of shape (N, H)
        The output ``out`` itself: ``out > 0`` exactly where ``x > 0``.

    Examples
    --------
    >>> relu_forward([[-1.0, 0.0, 2.0]])[0]
    array([[0., 0., 2.]])
    """
    x = as_float_array(x, "x", "relu_forward", min_ndim=1, allow_empty=True)
    return relu_forward_kernel(x)


def relu_forward_kernel(x):
    """:func:`relu_forward` on a checked float array."""
    out = np.maximum(x, 0.0)  # (N, H)
    return out, out


def relu_backward(dout, cache):
    r"""Gradient of the ReLU: :math:`\bar x = \bar y \odot [y > 0]`.

    .. math::

        \bar x_{nh} = \bar y_{nh} \,[y_{nh} > 0]

    Parameters
    ----------
    dout : array_like of shape (N, H)
    cache : ndarray of shape (N, H)
        From :func:`relu_forward`.

    Returns
    -------
    dx : ndarray of shape (N, H)

    Examples
    --------
    >>> _, cache = relu_forward([[-1.0, 0.0, 2.0]])
    >>> relu_backward([[5.0, 5.0, 5.0]], cache)
    array([[0., 0., 5.]])
    """
    dout = check_dout(dout, cache, "relu_backward")
    return relu_backward_kernel(dout, cache)


def relu_backward_kernel(dout, cache):
    """:func:`relu_backward` on checked arrays of one float dtype."""
    return dout * (cache > 0)  # (N, H)


def tanh_forward(x):
    r"""Hyperbolic tangent :math:`y = \tanh x`.

    .. math::

        y = \tanh x, \qquad \bar x = \bar y \odot (1 - y^2)

    Parameters
    ----------
    x : array_like of shape (N, H)

    Returns
    -------
    out : ndarray of shape (N, H)
    cache : ndarray of shape (N, H)
        The output, from which the derivative :math:`1 - y^2` is computed.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(tanh_forward([[0.0, 1.0]])[0], 4)
    array([[0.    , 0.7616]])
    """
    x = as_float_array(x, "x", "tanh_forward", min_ndim=1, allow_empty=True)
    return tanh_forward_kernel(x)


def tanh_forward_kernel(x):
    """:func:`tanh_forward` on a checked float array."""
    out = np.tanh(x)  # (N, H)
    return out, out


def tanh_backward(dout, cache):
    r"""Gradient of tanh: :math:`\bar x = \bar y \odot (1 - y^2)`.

    .. math::

        \bar x_{nh} = \bar y_{nh} (1 - y_{nh}^2)

    Parameters
    ----------
    dout : array_like of shape (N, H)
    cache : ndarray of shape (N, H)
        From :func:`tanh_forward`.

    Returns
    -------
    dx : ndarray of shape (N, H)

    Examples
    --------
    >>> import numpy as np
    >>> _, cache = tanh_forward([[0.0, 1.0]])
    >>> np.round(tanh_backward([[1.0, 1.0]], cache), 4)
    array([[1.  , 0.42]])
    """
    dout = check_dout(dout, cache, "tanh_backward")
    return tanh_backward_kernel(dout, cache)


def tanh_backward_kernel(dout, cache):
    """:func:`tanh_backward` on checked arrays of one float dtype."""
    return dout * (1 - cache * cache)  # (N, H)
