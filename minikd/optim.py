r"""Optimizers (SGD, Adam, AdamW): in-place updates of a ``params`` dict from its ``grads``.

An optimizer holds a reference to a ``params`` dict and updates its arrays in place from a
``grads`` dict with the same keys (a subset is fine: missing keys and their state are left alone).
Update rules follow PyTorch's ``torch.optim`` (SGD with ``dampening=0``; Adam and AdamW of
Kingma & Ba 2015, Algorithm 1, and Loshchilov & Hutter 2019, Algorithm 2).

A step is refused, and changes nothing, when the update or the optimizer's new state would hold
NaN or inf (a NaN or inf gradient included): :class:`NonFiniteUpdateError` is raised and the
parameters, step count and state are as before, so the next finite step is the one an
undisturbed optimizer would take. A step has three phases:

1. *compute* the candidate state (SGD's velocity, Adam's ``m`` and ``v``) into a second set of
   buffers and the update as :math:`\Delta = s\,u`, a scalar times an array (SGD: the new
   velocity, or :math:`g'`; Adam: :math:`\hat m / (\sqrt{\hat v} + \epsilon)`), reading but
   never writing the state or the parameters;
2. *check* with one dot product: if :math:`s \sqrt{u \cdot u} < \sqrt{\max}` (the largest
   float), every :math:`|\Delta_i|` is far too small for :math:`\theta - \Delta` to overflow;
   otherwise each :math:`\theta - \Delta` is checked (a huge learning rate can fail the bound
   with every entry finite: that step is taken). Adam also checks its new ``v``: :math:`g'^2`
   can overflow to inf while :math:`\Delta = m / \infty = 0` stays finite;
3. *commit*: the candidate buffers become the state (a swap of references, no copy), then
   :math:`\Delta` is written and :math:`\theta \leftarrow \theta - \Delta`. Writing it only now
   lets SGD with momentum put it in the old velocity's buffer: two buffers, not three, which
   matters once they outgrow the CPU's cache.

The buffers of the parameters that share a dtype are views into one flat array per kind, so the
work that is the same for every parameter (momentum decay, scaling, the check) is one NumPy call
per step, not one per parameter (on a small network NumPy's fixed cost per call, not the
arithmetic, is most of a step). A step on a subset of the keys works on each key's views and
commits by copying them: a swap of the flat arrays would take the other keys' state along.

The learning-rate schedules and :func:`clip_grad_norm` are in :mod:`minikd.schedules`
(re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_bool, check_fraction, check_nonnegative, check_positive, param_error
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm  # re-exported

__all__ = ["SGD", "Adam", "AdamW", "CosineSchedule", "NonFiniteUpdateError", "StepSchedule",
           "clip_grad_norm"]


class NonFiniteUpdateError(ArithmeticError):
    """An optimizer step would have made a parameter or the optimizer's state NaN or inf; nothing
    was changed."""


def _finite(x):
    """Whether every entry of ``x`` is finite: a dot product, or isfinite if squares overflow."""
    return math.isfinite(np.vdot(x, x)) or bool(np.isfinite(x).all())


class _Buffer:
    """One buffer per parameter, ``at[key]`` shaped like ``params[key]``, all of them views of
    one array ``whole`` (for the work that is the same for every parameter)."""

    __slots__ = ("whole", "at")

    def __init__(self, whole, at):
        self.whole, self.at = whole, at

    @classmethod
    def zeros(cls, shapes, dtype):
        whole = np.zeros(sum(math.prod(s) for s in shapes.values()), dtype)
        at, start = {}, 0
        for key, shape in shapes.items():
            at[key] = whole[start:start + math.prod(shape)].reshape(shape)
            start += math.prod(shape)
        return cls(whole, at)

    def only(self, key):
        return _Buffer(self.at[key], {key: self.at[key]})


class _Part:
    """The buffers of parameters updated together: each state (``state[name]``) and its candidate
    (``next[name]``), and two scratch buffers ``delta`` and ``tmp``, all :class:`_Buffer`."""

    __slots__ = ("keys", "state", "next", "delta", "tmp", "limit", "u", "s")

    def __init__(self, shapes, dtype, state_names, buffers=None):
        if buffers is None:  # zeros: np.zeros's calloc leaves an unused scratch unallocated
            buffers = [{n: _Buffer.zeros(shapes, dtype) for n in state_names} for _ in "sn"]
            buffers += [_Buffer.zeros(shapes, dtype) for _ in "dt"]
        self.keys = tuple(shapes)
        self.state, self.next, self.delta, self.tmp = buffers
        self.limit = math.sqrt(float(np.finfo(dtype).max))  # the bound on |Delta_i|
        self.u, self.s = "delta", 1.0  # this step's update: s times delta, or s times next[u]

    def update(self):
        """The array u of this step's update, Delta = s u (while u is a candidate)."""
        return self.delta if self.u == "delta" else self.next[self.u]

    def only(self, key):
        """The part of one parameter: views into this part's buffers."""
        return _Part({key: None}, self.delta.whole.dtype, (), [
            {n: b.only(key) for n, b in self.state.items()},
            {n: b.only(key) for n, b in self.next.items()}, self.delta.only(key),
            self.tmp.only(key)])


class _Optimizer:
    """Shared bookkeeping: the params dict, the learning rate, the step count, the buffers, and
    the compute -> check -> commit step. Subclasses write their rule in :meth:`_compute`."""

    _name = "Optimizer"
    _state_names = ()  # the states that persist across steps
    _checked_states = ()  # new states whose finiteness the check of Delta does not imply

    def __init__(self, params, lr):
        func = self._name
        if not isinstance(params, dict) or not params:
            raise param_error("params", func, "a non-empty dict of str to float arrays",
                              type(params).__name__, TypeError)
        for key, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise param_error("params", func, "a dict of float ndarrays",
                                  f"{type(p).__name__} at key {key!r}", TypeError)
        self.params = params
        self.lr = lr
        self.t = 0  # completed steps
        self._like, self._part_of = {}, {}  # key -> (shape, dtype) and part of its buffers
        self._sync()

    @property
    def lr(self):
        """The learning rate (settable; schedules set it)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_nonnegative(value, "lr", self._name)

    def _sync(self):
        """Make the buffers again if a parameter was added, removed or replaced by one of another
        shape or dtype (one part per dtype); a parameter that kept its shape and dtype keeps its
        state, a new or reshaped one starts from zeros."""
        like = {key: (p.shape, p.dtype) for key, p in self.params.items()}
        if like == self._like:
            return
        kept = {name: {key: self._part_of[key].state[name].at[key] for key in self._like}
                for name in self._state_names}
        groups = {}
        for key, (shape, dtype) in like.items():
            groups.setdefault(dtype, {})[key] = shape
        self._parts = [_Part(shapes, dtype, self._state_names) for dtype, shapes in groups.items()]
        self._part_of = {key: part for part in self._parts for key in part.keys}
        for name, views in kept.items():
            for key, view in views.items():
                if like.get(key) == self._like[key]:
                    np.copyto(self._part_of[key].state[name].at[key], view)
        self._like = like

    def _state(self, name):
        """State ``name`` keyed like params: a new dict of the current buffers, which alternate
        between steps (read it again after a step)."""
        self._sync()
        return {key: self._part_of[key].state[name].at[key] for key in self.params}

    def step(self, grads):
        """Update the parameters in place from ``grads`` (a dict keyed like ``params``).

        Raises
        ------
        NonFiniteUpdateError
            When the update or the new state would hold NaN or inf; nothing is changed.
        """
        if not isinstance(grads, dict):
            raise param_error("grads", f"{self._name}.step", "a dict of arrays keyed like params",
                              type(grads).__name__, TypeError)
        params, like = self.params, self._like
        stale = len(like) != len(params)
        for key, g in grads.items():
            p = params.get(key)
            if p is None or getattr(g, "shape", None) != p.shape:
                raise param_error("grads", f"{self._name}.step", "arrays shaped like params",
                                  f"key {key!r} with shape {getattr(g, 'shape', None)}")
            stale = stale or like.get(key) != (p.shape, p.dtype)
        if stale:
            self._sync()
        every = len(grads) == len(params)
        parts = self._parts if every else [self._part_of[key].only(key) for key in grads]
        t = self.t + 1
        for part in parts:
            part.u, part.s = self._compute(part, grads, t)
        self._check(parts, grads, t)
        for part in parts:
            if every:
                part.state, part.next = part.next, part.state
            else:  # views into the flat buffers: a swap would take the other keys along
                for name, buf in part.state.items():
                    np.copyto(buf.whole, part.next[name].whole)
            # a new state's u is now in state[u], and next[u] (the old state) is free for Delta
            u = part.u
            src, delta = (part.delta,) * 2 if u == "delta" else (part.state[u], part.next[u])
            if part.s != 1.0 or src is not delta:
                np.multiply(src.whole, part.s, out=delta.whole)
            for key in part.keys:
                p = params[key]
                np.subtract(p, delta.at[key], out=p)
        self.t = t

    def _check(self, parts, grads, t):
        """Raise :class:`NonFiniteUpdateError` if some theta - Delta or new state is not finite."""
        checked = self._checked_states
        if all(part.s * math.sqrt(np.vdot(part.update().whole, part.update().whole)) < part.limit
               and all(_finite(part.next[n].whole) for n in checked)  # (< is False for NaN)
               for part in parts):
            return
        bad = [key for part in parts for key in part.keys
               if not (np.isfinite(self.params[key] - part.s * part.update().at[key]).all()
                       and all(_finite(part.next[n].at[key]) for n in checked))]
        if not bad:
            return  # beyond the bound, yet every entry is finite: the step is taken
        bad_grads = [key for key, g in grads.items() if not np.isfinite(g).all()]
        why = f" (non-finite gradient(s) {bad_grads})" if bad_grads else ""
        state = f" or {self._name}'s state for them" if checked else ""
        raise NonFiniteUpdateError(
            f"{self._name} step {t} (lr={self.lr:g}) would make parameter(s) {bad}{state} "
            f"non-finite{why}; no parameter or optimizer state was changed.")

    def _decayed(self, part, key, g):
        """g' = g + lambda theta (L2 weight decay in the gradient, in ``tmp``); g if lambda = 0."""
        if not self.weight_decay:
            return g
        gd = part.tmp.at[key]
        np.multiply(self.params[key], self.weight_decay, out=gd)
        gd += g
        return gd

    def _compute(self, part, grads, t):  # pragma: no cover - abstract
        """Write step ``t``'s candidate state into ``part.next`` (reading, never writing,
        ``part.state`` and the parameters) for the keys ``part.keys``, and return ``(u, s)``:
        the update is s times ``part.next[u]``, or ``part.delta`` when u is ``"delta"``."""
        raise NotImplementedError


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
