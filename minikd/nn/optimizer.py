r"""The optimizers' shared step: check the gradients, build every new value, check it, assign it.

:class:`Optimizer` is the base of :class:`minikd.SGD`, :class:`minikd.Adam` and
:class:`minikd.AdamW` (their update rules are in :mod:`minikd.nn.optim`). It holds a reference to
a ``params`` dict and updates its arrays in place from a ``grads`` dict with the same keys (a
subset is fine: missing keys and their state are left alone).

A step is all or nothing. :meth:`Optimizer.step` builds every parameter's new value and new state
(in arrays of its own: those of the state the previous step replaced), checks them, and only then
assigns them: when one of them would hold NaN or inf (a NaN or inf gradient included),
:class:`NonFiniteUpdateError` is raised and the parameters, the step count and the state are as
before, so the next finite step is the one an undisturbed optimizer would take. Overflow on the
way is what the check looks for, so it prints no RuntimeWarning.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_nonnegative, param_error
from .optim_checks import check_grads, check_param

__all__ = ["NonFiniteUpdateError", "Optimizer"]


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


def _all_finite(arrays):
    """True when no array holds NaN or inf."""
    for a in arrays:
        if not np.isfinite(a).all():
            return False
    return True
