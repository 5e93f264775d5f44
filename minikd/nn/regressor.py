r"""The FitNets regressor: a linear map from the student's guided layer to the teacher's hint.

In FitNets (Romero et al. 2015, §2.2, eq. 3) the *hint* is the output of a teacher's hidden
layer and the *guided* layer is the student's; their widths differ, so a learned regressor
:math:`r(h) = h W + b` maps the student's :math:`H_s` units to the teacher's :math:`H_t`
before :func:`minikd.hint_loss` compares them. The regressor is trained with the student and
thrown away afterwards. It is an affine layer, so its forward and backward passes are
:func:`minikd.linear_forward` and :func:`minikd.linear_backward` under FitNets' names.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, param_error
from .layers import linear_backward, linear_forward

__all__ = ["init_regressor", "regressor_backward", "regressor_forward"]


def init_regressor(in_features, out_features, *, rng=None, dtype=np.float64):
    r"""Parameters of the FitNets linear regressor :math:`r(h) = h W + b`.

    Initialised like PyTorch's ``nn.Linear``: :math:`W_{ij}, b_j \sim U(-k, k)` with
    :math:`k = 1/\sqrt{H_s}`.

    Parameters
    ----------
    in_features : int
        Width :math:`H_s` of the student's guided layer.
    out_features : int
        Width :math:`H_t` of the teacher's hint layer.
    rng : int, numpy.random.Generator or None
        Seed or generator (``np.random.default_rng(rng)``).
    dtype : {numpy.float64, numpy.float32}, default float64

    Returns
    -------
    dict
        ``{"W": ndarray of shape (H_s, H_t), "b": ndarray of shape (H_t,)}``.

    Examples
    --------
    >>> p = init_regressor(3, 5, rng=0)
    >>> p["W"].shape, p["b"].shape, bool(abs(p["W"]).max() <= 3 ** -0.5)
    ((3, 5), (5,), True)
    """
    func = "init_regressor"
    H_s = check_int(in_features, "in_features", func, low=1)
    H_t = check_int(out_features, "out_features", func, low=1)
    try:
        float_dtype = np.dtype(dtype).name
    except (TypeError, ValueError):  # "foo", object(), ...
        float_dtype = None
    if float_dtype not in ("float32", "float64"):
        raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype), TypeError)
    try:
        rng = np.random.default_rng(rng)
    except (TypeError, ValueError) as err:  # a str, a negative seed, ...
        raise param_error("rng", func, "an int >= 0, a numpy.random.Generator or None",
                          repr(rng), TypeError) from err
    k = 1.0 / np.sqrt(H_s)
    W = rng.uniform(-k, k, size=(H_s, H_t)).astype(float_dtype)  # (H_s, H_t)
    b = rng.uniform(-k, k, size=H_t).astype(float_dtype)  # (H_t,)
    return {"W": W, "b": b}


def regressor_forward(h, W, b):
    r"""Forward pass of the FitNets regressor: :func:`minikd.linear_forward` by name.

    .. math::

        r = h W + b, \qquad
        \frac{\partial L}{\partial h} = \bar r W^\top, \quad
        \frac{\partial L}{\partial W} = h^\top \bar r, \quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n \bar r_n

    :func:`minikd.linear_forward` validates the inputs and names itself in its error messages;
    :func:`regressor_backward` is :func:`minikd.linear_backward` likewise.

    Parameters
    ----------
    h : array_like of shape (N, H_s)
        Activations of the student's guided layer.
    W : array_like of shape (H_s, H_t)
    b : array_like of shape (H_t,)

    Returns
    -------
    out : ndarray of shape (N, H_t)
        The student's prediction of the teacher's hint.
    cache : tuple
        What :func:`regressor_backward` needs.

    Examples
    --------
    >>> out, cache = regressor_forward([[1.0, 2.0]], [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [0, 0, 1])
    >>> out.tolist()
    [[1.0, 2.0, 4.0]]
    """
    return linear_forward(h, W, b)


def regressor_backward(dout, cache):
    r"""Backward pass of the FitNets regressor: :func:`minikd.linear_backward` by name.

    .. math::

        \bar h = \bar r W^\top, \qquad \bar W = h^\top \bar r, \qquad
        \bar b = \mathbf{1}^\top \bar r

    Parameters
    ----------
    dout : ndarray of shape (N, H_t)
        Upstream gradient dL/dr (for FitNets, the ``grad`` of :func:`minikd.hint_loss`).
    cache : tuple
        From :func:`regressor_forward`.

    Returns
    -------
    dh : ndarray of shape (N, H_s)
    dW : ndarray of shape (H_s, H_t)
    db : ndarray of shape (H_t,)

    Examples
    --------
    >>> _, cache = regressor_forward([[1.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> [g.tolist() for g in regressor_backward(np.array([[1.0, -1.0]]), cache)]
    [[[1.0, -1.0]], [[1.0, -1.0], [2.0, -2.0]], [1.0, -1.0]]
    """
    return linear_backward(dout, cache)
