r"""Inverted dropout as a pair of pure functions: ``dropout_forward -> (out, mask)``,
``dropout_backward(dout, mask)``.

The one layer that draws random numbers; :mod:`minikd.nn.layers` holds the others and
re-exports these. The public functions validate, then call their kernels, the same way; and
:func:`check_dout`, the check of the upstream gradient that every ``*_backward`` runs, is here,
below them all. Shape letters: N batch, H units.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_rng, check_unit_interval, param_error

__all__ = ["check_dout", "dropout_backward", "dropout_backward_kernel", "dropout_forward",
           "dropout_forward_kernel"]


def check_dout(dout, like, func):
    """``dout`` as an array of the shape and dtype of ``like`` (the forward's output, or its
    cache), or a clear error naming ``func`` (a ``*_backward`` function)."""
    if not (isinstance(like, np.ndarray) and like.dtype.kind == "f"):  # the forward's cache
        raise param_error("cache", func, f"the cache returned by {func[:-9]}_forward",
                          type(like).__name__, TypeError)
    dout = as_float_array(dout, "dout", func, ndim=like.ndim, dtype=like.dtype,
                          allow_empty=True)
    if dout.shape != like.shape:
        raise param_error("dout", func, f"an array of shape {like.shape} (the forward output)",
                          f"shape {dout.shape}")
    return dout


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
    return dropout_forward_kernel(x, p=p, train=bool(train), rng=check_rng(rng, func))


def dropout_forward_kernel(x, *, p, train, rng):
    """:func:`dropout_forward` on a checked float array, ``p`` in [0, 1), a bool ``train`` and a
    ``numpy.random.Generator``."""
    if not train or p == 0.0:
        return x.copy(), None
    keep = rng.random(x.shape, dtype=x.dtype) >= p  # (N, H) bool: [u >= p]
    mask = keep * x.dtype.type(1.0 / (1.0 - p))  # m = [u >= p] / (1 - p)
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
        dout = as_float_array(dout, "dout", "dropout_backward", min_ndim=1, allow_empty=True)
    else:
        dout = check_dout(dout, cache, "dropout_backward")
    return dropout_backward_kernel(dout, cache)


def dropout_backward_kernel(dout, cache):
    """:func:`dropout_backward` on checked arrays (``cache`` None: the identity, copied)."""
    return dout.copy() if cache is None else dout * cache  # (N, H)
