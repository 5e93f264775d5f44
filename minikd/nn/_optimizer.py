r"""The step shared by minikd's optimizers: all or nothing, in three phases.

A step is refused, and changes nothing, when the update or the optimizer's new state would hold
NaN or inf (a NaN or inf gradient included): :class:`NonFiniteUpdateError` is raised and the
parameters, the step count and the state are as before, so the next finite step is the one an
undisturbed optimizer would take.

1. *compute* the candidate state (SGD's velocity, Adam's ``m`` and ``v``) into a second set of
   buffers, and the update as :math:`\Delta = s\,u`, a scalar times an array (SGD: the new
   velocity, or :math:`g'`; Adam: :math:`\hat m / (\sqrt{\hat v} + \epsilon)`), reading but
   never writing the state or the parameters;
2. *check* with one dot product: if :math:`s \sqrt{u \cdot u} < \sqrt{\max}` (the largest
   float), every :math:`|\Delta_i|` is far too small for :math:`\theta - \Delta` to overflow;
   otherwise each :math:`\theta - \Delta` is checked (a huge learning rate can fail the bound
   with every entry finite: that step is taken). States whose finiteness that does not imply
   are checked too (Adam's ``v``: :math:`g'^2` can overflow while :math:`\Delta = m/\infty = 0`);
3. *commit*: the candidate buffers become the state (a swap of references, no copy), then
   :math:`\Delta` is written and :math:`\theta \leftarrow \theta - \Delta`. Writing it only now
   lets SGD with momentum put it in the old velocity's buffer: two buffers, not three, which
   matters once they outgrow the CPU's cache.

The buffers of the parameters that share a dtype are views into one flat array per kind, so the
work that is the same for every parameter (momentum decay, scaling, the check) is one NumPy call
per step, not one per parameter (on a small network NumPy's fixed cost per call, not the
arithmetic, is most of a step). A step on a subset of the keys works on each key's views and
commits by copying them: a swap of the flat arrays would take the other keys' state along.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_nonnegative, param_error


class NonFiniteUpdateError(ArithmeticError):
    """An optimizer step would have made a parameter or the optimizer's state NaN or inf; nothing
    was changed."""

    __module__ = "minikd.optim"  # its public home (tracebacks, pickling)


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
    """The buffers of parameters updated together: each ``state[name]`` and its candidate
    ``next[name]``, two scratch buffers ``delta`` and ``tmp``; and this step's update,
    Delta = ``s`` times ``next[u]``, or times ``delta`` when ``u`` is ``"delta"``."""

    __slots__ = ("keys", "state", "next", "delta", "tmp", "limit", "u", "s")

    def __init__(self, keys, state, next_, delta, tmp):
        self.keys, self.state, self.next, self.delta, self.tmp = keys, state, next_, delta, tmp
        self.limit = math.sqrt(float(np.finfo(delta.whole.dtype).max))  # the bound on |Delta_i|
        self.u, self.s = "delta", 1.0

    @classmethod
    def zeros(cls, shapes, dtype, names):
        """Zero buffers (``np.zeros`` leaves a scratch buffer that is never used unallocated)."""
        def buf():
            return _Buffer.zeros(shapes, dtype)
        return cls(tuple(shapes), {n: buf() for n in names}, {n: buf() for n in names}, buf(),
                   buf())

    def only(self, key):
        """The part of one parameter: views into this part's buffers."""
        return _Part((key,), {n: b.only(key) for n, b in self.state.items()},
                     {n: b.only(key) for n, b in self.next.items()}, self.delta.only(key),
                     self.tmp.only(key))

    def update(self):
        """The array u of this step's update (while it is a candidate)."""
        return self.delta if self.u == "delta" else self.next[self.u]


class _Optimizer:
    """Shared bookkeeping: the params dict, the learning rate, the step count, the buffers, and
    the compute -> check -> commit step. Subclasses write their rule in :meth:`_compute`."""

    _name = "Optimizer"
    _state_names = ()  # the states that persist across steps
    _checked_states = ()  # new states whose finiteness a finite Delta does not imply

    def __init__(self, params, lr):
        if not isinstance(params, dict) or not params:
            raise param_error("params", self._name, "a non-empty dict of str to float arrays",
                              type(params).__name__, TypeError)
        self.params = params
        self.lr = lr
        self.t = 0  # completed steps
        self._like, self._part_of = {}, {}  # key -> (shape, dtype), and the part of its buffers
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
        like = {key: (getattr(p, "shape", None), getattr(p, "dtype", None))
                for key, p in self.params.items()}
        if like == self._like:
            return
        for key, p in self.params.items():  # at the start, and whenever a parameter changed
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise param_error("params", self._name, "a dict of float ndarrays",
                                  f"{type(p).__name__} at key {key!r}", TypeError)
        old, old_like = self._part_of, self._like
        groups = {}
        for key, (shape, dtype) in like.items():
            groups.setdefault(dtype, {})[key] = shape
        self._parts = [_Part.zeros(shapes, dtype, self._state_names)
                       for dtype, shapes in groups.items()]
        self._part_of = {key: part for part in self._parts for key in part.keys}
        self._like = like
        for key in like.keys() & old_like.keys():
            if like[key] == old_like[key]:
                for name in self._state_names:
                    np.copyto(self._part_of[key].state[name].at[key], old[key].state[name].at[key])

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
            # a state's u is now in state[u], and next[u] (the old state) is free for Delta
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
        for part in parts:
            u = part.update().whole
            # s ||u|| < sqrt(max) bounds every |Delta_i| (module docstring); False for NaN, inf
            if not (part.s * math.sqrt(np.vdot(u, u)) < part.limit
                    and all(np.isfinite(part.next[n].whole).all() for n in checked)):
                break
        else:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is what is looked for
            bad = [key for part in parts for key in part.keys
                   if not (np.isfinite(self.params[key] - part.s * part.update().at[key]).all()
                           and all(np.isfinite(part.next[n].at[key]).all() for n in checked))]
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
        """Write step ``t``'s candidate state into ``part.next`` for the keys ``part.keys``,
        reading, never writing, ``part.state`` and the parameters, and return ``(u, s)``: the
        update is s times ``part.next[u]``, or times ``part.delta`` when u is ``"delta"``."""
        raise NotImplementedError
