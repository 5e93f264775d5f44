r"""Learning-rate schedules (step decay, cosine annealing) and gradient-norm clipping.

What a training loop does around an optimizer step: a schedule maps the number of completed
epochs to the learning rate (:func:`minikd.training.loop.train_loop` sets ``optimizer.lr`` from it),
and :func:`clip_grad_norm` scales a ``grads`` dict in place before the step. The optimizers are in
:mod:`minikd.nn.optim`, which re-exports these names.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_fraction, check_int, check_nonnegative, check_positive, param_error

__all__ = ["CosineSchedule", "StepSchedule", "clip_grad_norm"]


def clip_grad_norm(grads, max_norm):
    r"""Scale all gradients in place so their joint L2 norm is at most ``max_norm``.

    .. math::

        \|g\| = \Big(\sum_k \|g_k\|_2^2\Big)^{1/2}, \qquad
        g_k \leftarrow g_k \cdot \min\!\Big(1, \frac{c}{\|g\| + 10^{-6}}\Big)

    (PyTorch's ``clip_grad_norm_``, including its 1e-6.) A non-finite norm leaves the gradients
    unchanged; the optimizer then refuses the step.

    Parameters
    ----------
    grads : dict of str to ndarray
        Modified in place.
    max_norm : float
        c > 0.

    Returns
    -------
    float
        The norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> g = {"a": np.array([3.0]), "b": np.array([4.0])}
    >>> clip_grad_norm(g, 1.0), np.round(g["a"], 6), np.round(g["b"], 6)
    (5.0, array([0.6]), array([0.8]))
    """
    max_norm = check_positive(max_norm, "max_norm", "clip_grad_norm")
    if not isinstance(grads, dict):
        raise param_error("grads", "clip_grad_norm", "a dict of arrays", type(grads).__name__,
                          TypeError)
    for key, g in grads.items():  # modified in place: lists or int arrays cannot be
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise param_error("grads", "clip_grad_norm", "a dict of float ndarrays",
                              f"{type(g).__name__} at key {key!r}", TypeError)
        if not g.flags.writeable:
            raise param_error("grads", "clip_grad_norm", "a dict of writeable arrays (scaled "
                              "in place)", f"a read-only array at key {key!r}", TypeError)
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        with np.errstate(over="ignore"):  # an overflow of a finite norm is redone below
            norm = math.sqrt(float(np.dot(flat, flat)))  # ||g_k||
        if math.isinf(norm) and np.isfinite(flat).all():  # ||g_k|| = s ||g_k / s||, s = max|g|
            scale = float(np.abs(flat).max())
            scaled = flat.astype(np.float64) / scale
            norm = scale * math.sqrt(float(np.dot(scaled, scaled)))
        total = math.hypot(total, norm)  # sqrt(total^2 + ||g_k||^2), without overflow
    if math.isfinite(total):
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            for g in grads.values():
                g *= g.dtype.type(coef)
    return total


class StepSchedule:
    r"""Step decay: :math:`\eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}`.

    Called with ``t`` = the number of completed epochs (0 for the first), returns the learning
    rate to use; :func:`minikd.training.loop.train_loop` sets ``optimizer.lr`` from it each epoch.

    Parameters
    ----------
    lr : float
        :math:`\eta_0 > 0`.
    step_size : int
        s >= 1 epochs between decays.
    gamma : float, default 0.1
        Factor per decay, in (0, 1].

    Examples
    --------
    >>> s = StepSchedule(1.0, step_size=2, gamma=0.5)
    >>> [s(t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, lr, *, step_size, gamma=0.1):
        self.lr = check_positive(lr, "lr", "StepSchedule")
        self.step_size = check_int(step_size, "step_size", "StepSchedule", low=1)
        self.gamma = check_fraction(gamma, "gamma", "StepSchedule", closed_low=False,
                                    closed_high=True)

    def __call__(self, t):
        t = check_int(t, "t", "StepSchedule", low=0)
        return self.lr * self.gamma ** (t // self.step_size)

    def __repr__(self):
        return f"StepSchedule({self.lr}, step_size={self.step_size}, gamma={self.gamma})"


class CosineSchedule:
    r"""Cosine annealing from ``lr`` down to ``min_lr`` over ``total`` epochs.

    .. math::

        \eta_t = \eta_\min + \tfrac12(\eta_0 - \eta_\min)\big(1 + \cos(\pi \min(t, T) / T)\big)


    From :math:`\eta_0` at t = 0 to :math:`\eta_\min` at t = T, and :math:`\eta_\min` after
    (Loshchilov & Hutter 2017, eq. 5, without restarts).

    Parameters
    ----------
    lr : float
        :math:`\eta_0 > 0`.
    total : int
        T >= 1, usually the number of epochs.
    min_lr : float, default 0.0

    Examples
    --------
    >>> s = CosineSchedule(1.0, total=4)
    >>> [round(s(t), 4) for t in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """

    def __init__(self, lr, *, total, min_lr=0.0):
        self.lr = check_positive(lr, "lr", "CosineSchedule")
        self.total = check_int(total, "total", "CosineSchedule", low=1)
        self.min_lr = check_nonnegative(min_lr, "min_lr", "CosineSchedule")

    def __call__(self, t):
        t = min(check_int(t, "t", "CosineSchedule", low=0), self.total)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t
                                                                            / self.total))

    def __repr__(self):
        return f"CosineSchedule({self.lr}, total={self.total}, min_lr={self.min_lr})"
