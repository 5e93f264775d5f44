r"""Optimizers (SGD, Adam, AdamW): per-parameter update rules, all-or-nothing steps.

An optimizer holds a reference to a ``params`` dict and updates its arrays in place from a
``grads`` dict with the same keys (a subset is fine: missing keys and their state are left alone).
Each class writes its rule for one parameter in ``_update``, one operation a line with its
equation beside it, with PyTorch's ``torch.optim`` semantics (SGD with ``dampening=0``; Adam and
AdamW of Kingma & Ba 2015, Algorithm 1, and Loshchilov & Hutter 2019, Algorithm 2).

A step is all or nothing. :meth:`Optimizer.step` builds every parameter's new value and new state
(in arrays of its own: those of the state the previous step replaced), checks them, and only then
assigns them: when one of them would hold NaN or inf (a NaN or inf gradient included),
:class:`NonFiniteUpdateError` is raised and the parameters, the step count and the state are as
before, so the next finite step is the one an undisturbed optimizer would take. Overflow on the
way is what the check looks for, so it prints no RuntimeWarning.

The learning-rate schedules and :func:`clip_grad_norm` are in :mod:`minikd.nn.schedules`
(re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_bool, check_fraction, check_nonnegative, check_positive, param_error
from .optim_checks import check_grads, check_param
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm  # re-exported

__all__ = ["SGD", "Adam", "AdamW", "CosineSchedule", "NonFiniteUpdateError", "Optimizer",
           "StepSchedule", "clip_grad_norm"]


class NonFiniteUpdateError(ArithmeticError):
    """An optimizer step would have made a parameter or the optimizer's state NaN or inf; nothing
    was changed."""


class Optimizer:
    """The shared step: check the gradients, build every new value, check it, assign it.

    Subclasses set ``state_names`` (the arrays kept per parameter, e.g. ``("m", "v")``) and write
    ``_update(theta, g, state, new, t)``: from the parameter ``theta``, its gradient ``g``, its
    ``state`` (zeros before its first step) and the step number ``t`` (1 for the first), the
    new value into ``new["theta"]`` and the new state into ``new[name]``, arrays shaped like
    ``theta``. It reads, never writes, ``theta``, ``g`` and ``state``.

    Attributes
    ----------
    params : dict of str to ndarray
        The arrays updated in place.
    lr : float
        The learning rate (settable; schedules set it).
    t : int
        The number of completed steps.
    state : dict of str to dict of str to ndarray
        ``state[key][name]``: the state array ``name`` of parameter ``key`` (from its first
        step; read it again after a step, as a step puts new arrays there).
    """

    state_names = ()

    def __init__(self, params, lr):
        if not isinstance(params, dict) or not params:
            raise param_error("params", type(self).__name__, "a non-empty dict of str to float "
                              "arrays", type(params).__name__, TypeError)
        self.params = params
        for key in params:
            check_param(params, key, type(self).__name__)
        self.lr = lr
        self.t = 0
        self.state = {}  # key -> {name: array}, from a parameter's first step
        self._spare, self._layout = {}, {}  # key -> candidate arrays; the (shape, dtype) of both

    @property
    def lr(self):
        """The learning rate (settable; schedules set it)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_nonnegative(value, "lr", type(self).__name__)

    def step(self, grads):
        r"""Update the parameters in place from ``grads``, all or nothing.

        Parameters
        ----------
        grads : dict of str to array_like
            The gradients of some or all parameters, each shaped like its parameter (converted
            to its dtype).

        Raises
        ------
        NonFiniteUpdateError
            When a new parameter value or state would hold NaN or inf; nothing is changed.
        """
        grads = check_grads(self.params, grads, f"{type(self).__name__}.step")
        t = self.t + 1
        state, new = {}, {}  # per parameter: its state, and the arrays its candidates go to
        with np.errstate(all="ignore"):  # overflow, inf - inf, x / 0: what is checked below
            for key, g in grads.items():
                state[key], new[key] = self._arrays(key)
                self._update(self.params[key], g, state[key], new[key], t)
        bad = [key for key, arrays in new.items() if not _all_finite(arrays.values())]
        if bad:
            self._refuse(bad, grads, t)
        for key, arrays in new.items():  # assign
            theta = self.params[key]
            theta[...] = arrays["theta"]
            self.state[key] = {name: arrays[name] for name in self.state_names}
            self._spare[key] = {"theta": arrays["theta"], **state[key]}  # the next candidates
            self._layout[key] = (theta.shape, theta.dtype)
        self.t = t

    # -- helpers ------------------------------------------------------------------------------

    def _arrays(self, key):
        """``params[key]``'s state, and the arrays a step writes its candidate value
        (``"theta"``) and state into: those of the state the previous step replaced. A step
        writes into them instead of allocating, and so frees nothing: glibc's malloc gives freed
        arrays of megabytes back to the system, and the next allocation then pays a page fault
        per 4 kB (with fresh arrays a 784-800-800-10 training step took 10-40 % longer,
        measured). A parameter that is new, or was replaced by one of another shape or dtype,
        starts from zeros."""
        theta = self.params[key]
        if self._layout.get(key) == (theta.shape, theta.dtype):
            return self.state[key], self._spare[key]
        zeros = {name: np.zeros_like(theta) for name in self.state_names}
        return zeros, {name: np.empty_like(theta) for name in ("theta", *self.state_names)}

    def _refuse(self, bad, grads, t):
        name = type(self).__name__
        bad_grads = [key for key, g in grads.items() if not np.isfinite(g).all()]
        why = f" (non-finite gradient(s) {bad_grads})" if bad_grads else ""
        state = f" or {name}'s state for them" if self.state_names else ""
        raise NonFiniteUpdateError(
            f"{name} step {t} (lr={self.lr:g}) would make parameter(s) {bad}{state} "
            f"non-finite{why}; no parameter or optimizer state was changed.")

    def _update(self, theta, g, state, new, t):  # pragma: no cover - abstract
        raise NotImplementedError


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


def _all_finite(arrays):
    """True when no array holds NaN or inf."""
    for a in arrays:
        if not np.isfinite(a).all():
            return False
    return True
