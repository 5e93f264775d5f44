r"""Optimizers (SGD, Adam, AdamW): per-parameter update rules, all-or-nothing steps.

Each class writes its rule for one parameter in ``_update``, one operation a line with its
equation beside it, with PyTorch's ``torch.optim`` semantics (SGD with ``dampening=0``; Adam and
AdamW of Kingma & Ba 2015, Algorithm 1, and Loshchilov & Hutter 2019, Algorithm 2). The shared
step (check the gradients, build every new value, check it, assign it; a step that would make a
parameter or the state NaN or inf changes nothing and raises :class:`NonFiniteUpdateError`) is
:class:`minikd.nn.optimizer.Optimizer`, re-exported here.

The learning-rate schedules and :func:`clip_grad_norm` are in :mod:`minikd.nn.schedules`
(re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_bool, check_fraction, check_nonnegative, check_positive, param_error
from .optimizer import NonFiniteUpdateError, Optimizer  # re-exported
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm  # re-exported

__all__ = ["SGD", "Adam", "AdamW", "CosineSchedule", "NonFiniteUpdateError", "Optimizer",
           "StepSchedule", "clip_grad_norm"]


class SGD(Optimizer):
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

    def __init__(self, params, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = check_fraction(momentum, "momentum", "SGD")
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        if self.nesterov and self.momentum == 0.0:
            raise param_error("nesterov", "SGD", "False when momentum is 0", "True")
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay", "SGD")
        self.state_names = ("velocity",) if self.momentum else ()
        super().__init__(params, lr)

    @property
    def velocity(self):
        """The momentum buffers v, a dict keyed like ``params`` (zeros without momentum)."""
        return {key: self._arrays(key)[0]["velocity"] if self.momentum else np.zeros_like(p)
                for key, p in self.params.items()}

    def _update(self, theta, g, state, new, t):
        mu, out = self.momentum, new["theta"]  # out holds g', then -lr d, then theta's new value
        if self.weight_decay:
            g = np.add(g, self.weight_decay * theta, out=out)  # g' = g + lambda theta
        d = g  # the direction: g' (plain SGD), v, or g' + mu v (Nesterov)
        if mu:
            v = np.multiply(state["velocity"], mu, out=new["velocity"])  # mu v
            v += g  # v <- mu v + g'
            d = np.add(g, mu * v, out=out) if self.nesterov else v
        np.multiply(d, -self.lr, out=out)  # -lr d
        out += theta  # theta <- theta - lr d


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015, Algorithm 1), with optional L2 weight decay in the gradient.

    .. math::

        g' = g + \lambda\theta,\quad m \leftarrow \beta_1 m + (1 - \beta_1) g',\quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g'^2,\\
        \hat m = \frac{m}{1 - \beta_1^t},\quad \hat v = \frac{v}{1 - \beta_2^t},\quad
        \theta \leftarrow \theta - \eta\,\frac{\hat m}{\sqrt{\hat v} + \epsilon}

    :math:`\sqrt{\hat v}` is computed as :math:`\sqrt v / \sqrt{1 - \beta_2^t}` (PyTorch's
    arrangement): the same number, but :math:`\hat v` itself overflows float32 where :math:`v`
    does not (:math:`g = 10^{20}`).

    Parameters
    ----------
    params : dict of str to ndarray
    lr : float, default 1e-3
        :math:`\eta` (the paper's :math:`\alpha`).
    betas : tuple of float, default (0.9, 0.999)
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
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

    state_names = ("m", "v")

    def __init__(self, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        func = type(self).__name__
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
        """First-moment estimates, a dict keyed like ``params``."""
        return {key: self._arrays(key)[0]["m"] for key in self.params}

    @property
    def v(self):
        """Second-moment estimates, a dict keyed like ``params``."""
        return {key: self._arrays(key)[0]["v"] for key in self.params}

    def _update(self, theta, g, state, new, t):
        if self.weight_decay:
            g = g + self.weight_decay * theta  # g' = g + lambda theta
        self._adam_step(g, state, new, t)  # new["theta"] = -lr m_hat / (sqrt(v_hat) + eps)
        new["theta"] += theta

    def _adam_step(self, g, state, new, t):
        """Algorithm 1 from the gradient g, one in-place operation a line: m and v into
        ``new``, and -lr m_hat / (sqrt(v_hat) + eps) into ``new["theta"]`` (first g^2)."""
        b1, b2, d = *self.betas, new["theta"]
        m = np.multiply(state["m"], b1, out=new["m"])  # b1 m
        np.multiply(g, 1 - b1, out=d)
        m += d  # m <- b1 m + (1 - b1) g
        v = np.multiply(state["v"], b2, out=new["v"])  # b2 v
        np.multiply(g, 1 - b2, out=d)
        d *= g  # (1 - b2) g^2, in this order: g^2 alone overflows float32 at g = 1e20
        v += d  # v <- b2 v + (1 - b2) g^2
        np.sqrt(v, out=d)  # sqrt(v)
        d /= math.sqrt(1 - b2**t)  # sqrt(v_hat) = sqrt(v / (1 - b2^t)): v_hat can overflow
        d += self.eps  # sqrt(v_hat) + eps
        np.divide(m, d, out=d)  # m / (sqrt(v_hat) + eps)
        d *= -self.lr / (1 - b1**t)  # -lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2).

    .. math::

        m, v, \hat m, \hat v \text{ as in Adam from the raw gradient } g, \qquad
        \theta \leftarrow \theta - \eta\,\Big(\frac{\hat m}{\sqrt{\hat v} + \epsilon}
        + \lambda\theta\Big)

    (PyTorch's form, :math:`\theta (1 - \eta\lambda) - \eta \hat m / (\sqrt{\hat v} + \epsilon)`;
    the paper's schedule multiplier :math:`\eta_t` is the learning rate a schedule sets.)

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

    def __init__(self, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _update(self, theta, g, state, new, t):
        self._adam_step(g, state, new, t)  # from the raw gradient
        new["theta"] += theta * (1 - self.lr * self.weight_decay)  # decoupled decay
