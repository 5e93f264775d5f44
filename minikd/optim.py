r"""Optimizers (SGD, Adam, AdamW): in-place updates of a ``params`` dict from its ``grads``.

An optimizer holds a reference to a ``params`` dict and updates its arrays in place from a
``grads`` dict with the same keys (a subset is fine: missing keys are left alone). Each step
writes the amount to subtract, :math:`\Delta`, into a buffer kept per parameter, then applies
:math:`\theta \leftarrow \theta - \Delta` with in-place NumPy operations, so a step allocates
almost nothing.

A step is all or nothing with respect to finiteness: if any :math:`\theta - \Delta` would hold
NaN or inf (a NaN or inf gradient included), :class:`NonFiniteUpdateError` is raised and
neither the parameters nor the optimizer's own state (step count, momentum, moments) change:
the state is copied before the step (one copy of each flat state array) and put back on refusal,
so the next finite step is the one a fresh optimizer would take. The check costs one dot
product: when :math:`\Delta \cdot \Delta` is finite, every
:math:`|\Delta_i|` is below the square root of the largest float, far too small for the
subtraction to overflow.

The per-parameter buffers (:math:`\Delta`, momentum, ...) are views into one flat array per kind
when the parameters share a dtype. A step that updates every parameter then runs the work that
is the same for all of them (the finiteness check, SGD's momentum decay and learning-rate scale)
once on the flat array: on a small network NumPy's fixed cost per call, not the arithmetic,
is most of a step.

Update rules follow PyTorch's ``torch.optim`` (SGD with ``dampening=0``; Adam and AdamW of
Kingma & Ba 2015, Algorithm 1, and Loshchilov & Hutter 2019, Algorithm 2).

The learning-rate schedules and :func:`clip_grad_norm` are in :mod:`minikd.schedules`
(re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import (
    check_bool,
    check_fraction,
    check_nonnegative,
    check_positive,
    param_error,
)
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm  # re-exported

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineSchedule",
    "NonFiniteUpdateError",
    "StepSchedule",
    "clip_grad_norm",
]


_BOUND_MIN_SIZE = 1 << 16  # parameters from which SGD bounds its update instead of saving state


class NonFiniteUpdateError(ArithmeticError):
    """An optimizer step would have made a parameter NaN or inf; no parameter was changed."""


def _update_is_finite(p, delta):
    """Whether ``p - delta`` is finite (the slow, exact check)."""
    return bool(np.isfinite(p - delta).all())


class _Optimizer:
    """Shared bookkeeping: the params dict, the learning rate, the step count, the buffers."""

    _name = "Optimizer"
    _state_names = ()  # the states that persist across steps (scratch buffers excluded)

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
        self._states = {}  # name -> {key: buffer shaped like params[key]}
        self._flat = {}  # name -> the flat array behind every buffer of that state, if one is
        self._backup = {}  # name -> a flat array for _save_state's copy of that state

    @property
    def lr(self):
        """The learning rate (settable; schedules set it)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_nonnegative(value, "lr", self._name)

    def _state(self, name):
        """The buffers called ``name``, zeros shaped like each parameter, keyed like params.

        Views into one flat array (``self._flat[name]``) when the parameters share a dtype.
        """
        views = self._states.get(name)
        if views is None:
            views = self._states[name] = {}
            if len({p.dtype for p in self.params.values()}) == 1:
                flat = np.zeros(sum(p.size for p in self.params.values()),
                                next(iter(self.params.values())).dtype)
                start = 0
                for key, p in self.params.items():
                    views[key] = flat[start:start + p.size].reshape(p.shape)
                    start += p.size
                self._flat[name] = flat
        return views

    def _buffer(self, name, key, like):
        """The buffer of state ``name`` for parameter ``key`` (added or reshaped ones too)."""
        views = self._state(name)
        buf = views.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = views[key] = np.zeros_like(like)
            self._flat.pop(name, None)  # the flat array no longer backs every buffer
        return buf

    def _flat_step(self, grads, name):
        """State ``name``'s flat array if this step updates every one of its buffers, else None."""
        views = self._state(name)
        flat = self._flat.get(name)
        if flat is None or len(grads) != len(views):
            return None
        for key, g in grads.items():  # a parameter replaced by one of another shape or dtype
            buf = views.get(key)
            if buf is None or buf.shape != g.shape or buf.dtype != self.params[key].dtype:
                return None
        return flat

    def step(self, grads):
        """Update the parameters in place from ``grads`` (a dict keyed like ``params``).

        Raises
        ------
        NonFiniteUpdateError
            When the update would make some parameter non-finite; parameters are unchanged.
        """
        if not isinstance(grads, dict):
            raise param_error("grads", f"{self._name}.step", "a dict of arrays keyed like params",
                              type(grads).__name__, TypeError)
        for key, g in grads.items():
            p = self.params.get(key)
            if p is None or getattr(g, "shape", None) != p.shape:
                raise param_error("grads", f"{self._name}.step", "arrays shaped like params",
                                  f"key {key!r} with shape {getattr(g, 'shape', None)}")
        flat_delta = self._flat_step(grads, "delta")
        safe = flat_delta is not None and self._update_is_bounded(grads)
        saved = None if safe else self._save_state(grads)
        self.t += 1
        if flat_delta is not None:  # the views are known to fit: no per-key lookups
            views = self._states["delta"]
            deltas = {key: views[key] for key in grads}
        else:
            deltas = {key: self._buffer("delta", key, self.params[key]) for key in grads}
        self._fill_deltas(grads, deltas, flat_delta is not None)
        if safe:
            squares = 0.0  # every |delta_i| was bounded in advance
        elif flat_delta is not None:
            squares = float(np.vdot(flat_delta, flat_delta))
        else:
            squares = sum(float(np.vdot(d, d)) for d in deltas.values())
        # A finite sum of squares bounds every |delta_i| by sqrt(max float), far too small for
        # p - delta to overflow: a dot product instead of an isfinite pass.
        if not math.isfinite(squares):
            bad = [key for key, d in deltas.items()
                   if not _update_is_finite(self.params[key], d)]
            if bad:
                self.t -= 1
                self._restore_state(saved)
                bad_grads = [key for key, g in grads.items() if not np.isfinite(g).all()]
                why = f" (non-finite gradient(s) {bad_grads})" if bad_grads else ""
                raise NonFiniteUpdateError(
                    f"{self._name} step {self.t + 1} (lr={self.lr:g}) would make parameter(s) "
                    f"{bad} non-finite{why}; no parameter or optimizer state was changed.")
        for key, d in deltas.items():
            p = self.params[key]
            np.subtract(p, d, out=p)

    def _update_is_bounded(self, grads):
        """Whether this step's update is known to be finite before it is computed.

        Then the state need not be backed up for a refusal (a copy of every buffer: two passes
        over all parameters' worth of memory, 2-3 % of a 784-800-800-10 step). False by default:
        the state is saved, and a non-finite update is caught afterwards.
        """
        return False

    def _save_state(self, grads):
        """What a refused step needs to put the persistent state back: per state, a copy of its
        flat array and of its key -> view mapping (one copy, no per-key work), or copies of the
        buffers of the keys in ``grads`` when no flat array backs that state."""
        saved = []
        for name in self._state_names:
            views = self._state(name)
            flat = self._flat.get(name)
            if flat is not None:
                backup = self._backup.get(name)
                if backup is None or backup.shape != flat.shape or backup.dtype != flat.dtype:
                    backup = self._backup[name] = np.empty_like(flat)
                np.copyto(backup, flat)
                saved.append((name, dict(views), flat, backup))
            else:
                saved.append((name, None, None, {key: (views.get(key), None if views.get(key)
                                                       is None else views[key].copy())
                                                 for key in grads}))
        return saved

    def _restore_state(self, saved):
        """Undo a refused step's changes to the state saved by :meth:`_save_state`."""
        for name, views, flat, backup in saved:
            if flat is not None:  # buffers replaced during the step are dropped again
                np.copyto(flat, backup)
                self._states[name] = views
                self._flat[name] = flat
                continue
            current = self._states[name]
            for key, (buf, copy) in backup.items():
                if buf is None:
                    current.pop(key, None)  # new in this step: starts from zeros next time
                else:
                    current[key] = buf  # the same array (a replaced buffer is put back too)
                    np.copyto(buf, copy)

    def _fill_deltas(self, grads, deltas, every):
        """Write each parameter's update into ``deltas[key]``; ``every``: all are updated."""
        for key, g in grads.items():
            self._fill_delta(key, self.params[key], g, deltas[key])

    def _fill_delta(self, key, p, g, delta):  # pragma: no cover - abstract
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
        super().__init__(params, lr)
        self.momentum = check_fraction(momentum, "momentum", "SGD")
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        if self.nesterov and self.momentum == 0.0:
            raise param_error("nesterov", "SGD", "False when momentum is 0", "True")
        self._state_names = ("velocity",) if self.momentum else ()
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay", "SGD")

    @property
    def velocity(self):
        """The momentum buffers v, a dict keyed like ``params``."""
        return self._state("velocity")

    def _update_is_bounded(self, grads):
        # Plain momentum on large arrays: v' = mu v + g' and delta = lr v' are bounded entry by
        # entry by the norms, |v'_i| <= mu |v| + |g| + lambda |theta|. Three dot products (read
        # passes) replace the state backup (a copy) and the check of delta.
        flat_v = self._flat.get("velocity")
        if (not self.momentum or self.nesterov or flat_v is None
                or flat_v.size < _BOUND_MIN_SIZE  # small arrays: the backup is a cheap copy
                or self._flat_step(grads, "velocity") is None):
            return False
        norm = self.momentum * math.sqrt(float(np.vdot(flat_v, flat_v)))
        norm += math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        if self.weight_decay:
            norm += self.weight_decay * math.sqrt(sum(float(np.vdot(p, p))
                                                      for p in self.params.values()))
        limit = math.sqrt(float(np.finfo(flat_v.dtype).max))  # as for the check of delta
        return norm < limit and self.lr * norm < limit  # False for NaN and inf too

    def _fill_deltas(self, grads, deltas, every):
        if not self.momentum or self.nesterov:
            return super()._fill_deltas(grads, deltas, every)
        # plain momentum: v = mu v + g', delta = lr v, with the two scalings done once on the
        # flat arrays when every parameter is updated
        flat_v = self._flat_step(grads, "velocity") if every else None
        if flat_v is not None:
            flat_v *= self.momentum
            views = self._states["velocity"]
            for key, g in grads.items():
                views[key] += self._decayed(key, self.params[key], g)  # v = mu v + g'
            np.multiply(flat_v, self.lr, out=self._flat["delta"])
            return
        for key, g in grads.items():
            p = self.params[key]
            v = self._buffer("velocity", key, p)
            v *= self.momentum
            v += self._decayed(key, p, g)  # v = mu v + g'
            np.multiply(v, self.lr, out=deltas[key])

    def _decayed(self, key, p, g):
        """The gradient with weight decay, g' = g + lambda theta (g itself without decay)."""
        if not self.weight_decay:
            return g
        gd = self._buffer("decayed", key, p)
        np.multiply(p, self.weight_decay, out=gd)
        gd += g
        return gd

    def _fill_delta(self, key, p, g, delta):
        # without momentum, or with Nesterov's (plain momentum is in _fill_deltas)
        g = self._decayed(key, p, g)
        if not self.momentum:
            np.multiply(g, self.lr, out=delta)
            return
        v = self._buffer("velocity", key, p)
        v *= self.momentum
        v += g  # v = mu v + g'
        np.multiply(v, self.momentum, out=delta)  # Nesterov: lr (g' + mu v)
        delta += g
        delta *= self.lr


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
    _decoupled = False

    def __init__(self, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        func = self._name
        try:
            b1, b2 = betas
        except (TypeError, ValueError) as err:
            raise param_error("betas", func, "a pair of floats in [0, 1)", repr(betas),
                              TypeError) from err
        self.betas = (check_fraction(b1, "betas", func), check_fraction(b2, "betas", func))
        self.eps = check_positive(eps, "eps", func)
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay", func)

    @property
    def m(self):
        """First-moment estimates, a dict keyed like ``params``."""
        return self._state("m")

    @property
    def v(self):
        """Second-moment estimates, a dict keyed like ``params``."""
        return self._state("v")

    def _fill_delta(self, key, p, g, delta):
        b1, b2 = self.betas
        tmp = self._buffer("tmp", key, p)
        if self.weight_decay and not self._decoupled:
            np.multiply(p, self.weight_decay, out=tmp)
            tmp += g  # g' = g + lambda * theta
            g = tmp
        m = self._buffer("m", key, p)
        v = self._buffer("v", key, p)
        m *= b1
        np.multiply(g, 1.0 - b1, out=delta)
        m += delta  # m = b1 m + (1 - b1) g'
        v *= b2
        np.multiply(g, g, out=delta)
        delta *= 1.0 - b2
        v += delta  # v = b2 v + (1 - b2) g'^2
        bc1 = 1.0 - b1 ** self.t
        bc2 = 1.0 - b2 ** self.t
        np.sqrt(v, out=delta)
        delta *= 1.0 / math.sqrt(bc2)
        delta += self.eps  # denominator sqrt(v_hat) + eps
        np.divide(m, delta, out=delta)
        delta *= self.lr / bc1
        if self.weight_decay and self._decoupled:
            np.multiply(p, self.lr * self.weight_decay, out=tmp)
            delta += tmp  # theta (1 - lr lambda) - adam = theta - (adam + lr lambda theta)


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
