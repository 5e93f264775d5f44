r"""Optimizers (SGD, Adam, AdamW): in-place updates of a ``params`` dict from its ``grads``.

An optimizer holds a reference to a ``params`` dict and updates its arrays in place from a
``grads`` dict with the same keys (a subset is fine: missing keys and their state are left alone).
Update rules follow PyTorch's ``torch.optim`` (SGD with ``dampening=0``; Adam and AdamW of
Kingma & Ba 2015, Algorithm 1, and Loshchilov & Hutter 2019, Algorithm 2).

A step is refused, and changes nothing, when the update or the optimizer's new state would hold
NaN or inf (a NaN or inf gradient included): :class:`NonFiniteUpdateError` is raised and the
parameters, the step count and the state are as before, so the next finite step is the one an
undisturbed optimizer would take. How (compute the candidate state and update, check, then
commit by swapping buffers) is in :mod:`minikd._optimizer`; each class here writes its rule,
in ``_compute``, as a candidate state in ``part.next`` and an update :math:`\Delta = s\,u`.

The learning-rate schedules and :func:`clip_grad_norm` are in :mod:`minikd.schedules`
(re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_bool, check_fraction, check_nonnegative, check_positive, param_error
from ._optimizer import NonFiniteUpdateError, _Optimizer
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm  # re-exported

__all__ = ["SGD", "Adam", "AdamW", "CosineSchedule", "NonFiniteUpdateError", "Optimizer",
           "StepSchedule", "clip_grad_norm"]

Optimizer = _Optimizer  # the public base class: minikd's optimizers refuse non-finite steps


class SGD(_Optimizer):
    r"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    .. math::

        g' = g + \lambda\theta, \quad v \leftarrow \mu v + g', \quad
        \theta \leftarrow \theta - \eta\,(g' + \mu v \text{ if Nesterov else } v)

    With :math:`\mu = 0` this is plain :math:`\theta \leftarrow \theta - \eta g'`. ``v`` starts
    at 0, so the first step has :math:`v = g'` (as in PyTorch, ``dampening=0``; Sutskever et al.
    2013, eq. 3 for Nesterov in this form).

    Parameters
    ----------
    params : dict of str to ndarray
        Updated in place.
    lr : float
        Learning rate :math:`\eta \ge 0`.
    momentum : float, default 0.0
        :math:`\mu` in [0, 1).
    nesterov : bool, default False
        Requires momentum > 0.
    weight_decay : float, default 0.0
        :math:`\lambda \ge 0` (L2 penalty added to the gradient, every parameter).

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> opt = SGD(params, lr=0.1, momentum=0.9)
    >>> opt.step({"w": np.array([1.0, 1.0])}); opt.step({"w": np.array([1.0, 1.0])})
    >>> params["w"]
    array([ 0.71, -2.29])
    """

    _name = "SGD"

    def __init__(self, params, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = check_fraction(momentum, "momentum", "SGD")
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        if self.nesterov and self.momentum == 0.0:
            raise param_error("nesterov", "SGD", "False when momentum is 0", "True")
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay", "SGD")
        self._state_names = ("velocity",) if self.momentum else ()
        super().__init__(params, lr)

    @property
    def velocity(self):
        """The momentum buffers v, a dict keyed like ``params`` (read it again after a step)."""
        if not self.momentum:
            return {key: np.zeros_like(p) for key, p in self.params.items()}
        return self._state("velocity")

    def _compute(self, part, grads, t):
        mu, delta = self.momentum, part.delta
        if not mu:
            for key in part.keys:
                np.multiply(self._decayed(part, key, grads[key]), self.lr, out=delta.at[key])
            return "delta", 1.0  # Delta = lr g'
        v = part.next["velocity"]
        np.multiply(part.state["velocity"].whole, mu, out=v.whole)  # mu v, every key at once
        for key in part.keys:
            g = self._decayed(part, key, grads[key])
            v.at[key] += g  # v' = mu v + g'
            if self.nesterov:
                np.multiply(v.at[key], mu, out=delta.at[key])
                delta.at[key] += g  # g' + mu v'
        return ("delta" if self.nesterov else "velocity"), self.lr  # Delta = lr (...) or lr v'


class Adam(_Optimizer):
    r"""Adam (Kingma & Ba 2015, Algorithm 1), with optional L2 weight decay in the gradient.

    .. math::

        g' = g + \lambda\theta,\quad m \leftarrow \beta_1 m + (1 - \beta_1) g',\quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g'^2,\\
        \theta \leftarrow \theta - \frac{\eta}{1 - \beta_1^t}\,
        \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}

    (PyTorch's arrangement of the bias corrections, so ``eps`` means the same thing.)

    Parameters
    ----------
    params : dict of str to ndarray
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty :math:`\lambda` added to the gradient (use :class:`AdamW` for decoupled decay).

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0])}
    >>> Adam(params, lr=0.1).step({"w": np.array([5.0])})
    >>> np.round(params["w"], 6)  # the first step moves every entry by about lr
    array([0.9])
    """

    _name = "Adam"
    _state_names = ("m", "v")
    _checked_states = ("v",)  # g'^2 can overflow to inf while Delta = m / inf = 0
    _decoupled = False

    def __init__(self, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        func = self._name
        try:
            b1, b2 = betas
        except (TypeError, ValueError) as err:
            raise param_error("betas", func, "a pair of floats in [0, 1)", repr(betas),
                              TypeError) from err
        self.betas = (check_fraction(b1, "betas", func), check_fraction(b2, "betas", func))
        self.eps = check_positive(eps, "eps", func)
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay", func)
        super().__init__(params, lr)

    @property
    def m(self):
        """First-moment estimates, a dict keyed like ``params`` (read it again after a step)."""
        return self._state("m")

    @property
    def v(self):
        """Second-moment estimates, a dict keyed like ``params`` (read it again after a step)."""
        return self._state("v")

    def _compute(self, part, grads, t):
        b1, b2 = self.betas
        m, v, ratio = part.next["m"], part.next["v"], part.delta
        for key in part.keys:
            g = grads[key] if self._decoupled else self._decayed(part, key, grads[key])
            np.multiply(g, 1.0 - b1, out=m.at[key])
            np.multiply(g, g, out=v.at[key])
        m, v, r = m.whole, v.whole, ratio.whole
        np.multiply(part.state["m"].whole, b1, out=r)
        m += r  # m' = b1 m + (1 - b1) g'
        v *= 1.0 - b2
        np.multiply(part.state["v"].whole, b2, out=r)
        v += r  # v' = b2 v + (1 - b2) g'^2
        np.sqrt(v, out=r)
        r *= 1.0 / math.sqrt(1.0 - b2 ** t)
        r += self.eps  # sqrt(v' / (1 - b2^t)) + eps
        np.divide(m, r, out=r)
        bc1 = 1.0 - b1 ** t
        if self._decoupled and self.weight_decay:
            # theta (1 - lr lambda) - lr / bc1 r = theta - lr / bc1 (r + bc1 lambda theta)
            for key in part.keys:
                decay = part.tmp.at[key]
                np.multiply(self.params[key], bc1 * self.weight_decay, out=decay)
                ratio.at[key] += decay
        return "delta", self.lr / bc1


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2).

    .. math::

        \theta \leftarrow \theta\,(1 - \eta\lambda) - \frac{\eta}{1 - \beta_1^t}\,
        \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`m, v` as in :class:`Adam` computed from the raw gradient g.

    Parameters
    ----------
    params : dict of str to ndarray
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0.01
        :math:`\lambda` (PyTorch's default).

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0])}
    >>> AdamW(params, lr=0.1, weight_decay=0.5).step({"w": np.array([5.0])})
    >>> np.round(params["w"], 6)  # 1 * (1 - 0.05) - 0.1
    array([0.85])
    """

    _name = "AdamW"
    _decoupled = True

    def __init__(self, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
