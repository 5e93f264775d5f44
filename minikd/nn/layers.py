r"""Layers as pairs of pure functions: ``*_forward -> (out, cache)``, ``*_backward(dout, cache)``.

Linear, ReLU, tanh and inverted dropout. Every backward returns fresh arrays and keeps no state,
so a reader can check each line against the equation in its docstring (derivations in
``docs/derivations/backprop.md``; backpropagation as in Rumelhart, Hinton & Williams 1986,
and the cs231n layer API). Shape letters: N batch, D inputs, H outputs.

The public functions validate their inputs; :class:`minikd.MLP` runs the same equations on
arrays it already trusts, with in-place updates where the buffers are its own.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_unit_interval, common_float_dtype, param_error

__all__ = [
    "dropout_backward",
    "dropout_forward",
    "linear_backward",
    "linear_forward",
    "relu_backward",
    "relu_forward",
    "tanh_backward",
    "tanh_forward",
]


def _check_dout(dout, like, func):
    if not (isinstance(like, np.ndarray) and like.dtype.kind == "f"):  # the forward's cache
        raise param_error("cache", func, f"the cache returned by {func[:-9]}_forward",
                          type(like).__name__, TypeError)
    dout = as_float_array(dout, "dout", func, ndim=like.ndim, dtype=like.dtype,
                          allow_empty=True)
    if dout.shape != like.shape:
        raise param_error("dout", func, f"an array of shape {like.shape} (the forward output)",
                          f"shape {dout.shape}")
    return dout


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
    dout = _check_dout(dout, np.empty((x.shape[0], W.shape[1]), W.dtype), "linear_backward")
    dx = dout @ W.T  # (N, D)
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
    out = np.maximum(x, 0)
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
    dout = _check_dout(dout, cache, "relu_backward")
    return dout * (cache > 0)


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
    out = np.tanh(x)
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
    dout = _check_dout(dout, cache, "tanh_backward")
    return dout * (1 - cache * cache)


def _dropout_mask(shape, p, dtype, rng):
    """Inverted-dropout mask: ``[u >= p] / (1 - p)`` with ``u ~ U[0, 1)``, in ``dtype``."""
    keep = rng.random(shape, dtype=dtype) >= p  # (N, H) bool
    mask = keep.astype(dtype)
    mask *= dtype.type(1.0 / (1.0 - p))
    return mask


def dropout_forward(x, *, p, train, rng=None):
    r"""Inverted dropout: zero each entry with probability p, scale survivors by 1 / (1 - p).

    .. math::

        y = x \odot m, \quad m_{nh} = \frac{[u_{nh} \ge p]}{1 - p},\;
        u_{nh} \sim U[0, 1), \qquad \bar x = \bar y \odot m

    :math:`\mathbb{E}[m] = 1`, so the expected activation is unchanged and evaluation needs no
    rescaling: with ``train=False`` (or ``p = 0``) the layer is the identity (Srivastava et al.
    2014, §10; Hinton et al. 2015, §3, trained their MNIST teacher with dropout).

    Parameters
    ----------
    x : array_like of shape (N, H)
    p : float
        Drop probability in [0, 1).
    train : bool
        Drop only when True.
    rng : int, numpy.random.Generator or None
        Source of the mask.

    Returns
    -------
    out : ndarray of shape (N, H)
    cache : ndarray of shape (N, H) or None
        The scaled mask m (None when the layer was the identity).

    Examples
    --------
    >>> out, mask = dropout_forward([[1.0, 2.0, 3.0, 4.0]], p=0.5, train=True, rng=0)
    >>> sorted(set(mask.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    >>> dropout_forward([[1.0, 2.0]], p=0.5, train=False)[0]
    array([[1., 2.]])
    """
    func = "dropout_forward"
    x = as_float_array(x, "x", func, min_ndim=1, allow_empty=True)
    p = check_unit_interval(p, "p", func)
    if p == 1.0:
        raise param_error("p", func, "a float in the range [0, 1)", repr(p))
    if not isinstance(train, (bool, np.bool_)):
        raise param_error("train", func, "a bool", repr(train), TypeError)
    if not train or p == 0.0:
        return x.copy(), None
    mask = _dropout_mask(x.shape, p, x.dtype, np.random.default_rng(rng))
    return x * mask, mask


def dropout_backward(dout, cache):
    r"""Gradient of inverted dropout: :math:`\bar x = \bar y \odot m`.

    .. math::

        \bar x_{nh} = \bar y_{nh}\, m_{nh}

    Parameters
    ----------
    dout : array_like of shape (N, H)
    cache : ndarray of shape (N, H) or None
        The mask from :func:`dropout_forward`; None means the layer was the identity.

    Returns
    -------
    dx : ndarray of shape (N, H)

    Examples
    --------
    >>> out, mask = dropout_forward([[1.0, 2.0]], p=0.5, train=False)
    >>> dropout_backward([[3.0, 4.0]], mask)
    array([[3., 4.]])
    """
    if cache is None:
        return as_float_array(dout, "dout", "dropout_backward", min_ndim=1,
                              allow_empty=True).copy()
    dout = _check_dout(dout, cache, "dropout_backward")
    return dout * cache
