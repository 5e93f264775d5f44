r"""One mini-batch of :func:`minikd.train_loop` under its non-finite guards.

:func:`train_batch` runs the batch's ``step``, refuses a NaN or inf loss term (one
``math.isfinite`` per term), optionally clips the gradients and applies the optimizer, whose
refusal of a non-finite update (:class:`minikd.NonFiniteUpdateError`) it reports as
:class:`NonFiniteLossError`, naming the epoch and step. NumPy's floating-point warnings are off
inside, so that error is the one report; the parameters keep their values from before the step.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.optim import NonFiniteUpdateError, clip_grad_norm

__all__ = ["NonFiniteLossError", "train_batch"]

class NonFiniteLossError(ArithmeticError):
    """Training produced a NaN or inf; the parameters hold their last finite values.

    Attributes
    ----------
    epoch, step : int
        Where it happened (both 1-based; ``step`` counts mini-batches within the epoch).
    """

    def __init__(self, message, *, epoch, step):
        super().__init__(message)
        self.epoch = epoch
        self.step = step



def train_batch(params, optimizer, step, idx, clip_norm, guard_params, where):
    """One mini-batch: terms and gradients, the non-finite guards, the update; returns terms.

    ``where`` is ``(label, epoch, step, n_batches)`` for the error message; ``guard_params``
    asks for a finiteness test of every parameter after the update (an optimizer that is not
    minikd's, which cannot be trusted to refuse).

    NumPy's floating-point warnings are off inside: a NaN or inf that reaches a term or the
    update is reported once, here, as NonFiniteLossError.
    """
    with np.errstate(all="ignore"):
        terms, grads = step(idx)
        terms = {key: float(value) for key, value in terms.items()}
        for key, value in terms.items():
            if not math.isfinite(value):
                raise non_finite_error(where, f"loss term {key!r} is {value}; parameters kept at "
                                  "their values before this step.")
        if clip_norm is not None:
            clip_grad_norm(grads, clip_norm)
        try:
            optimizer.step(grads)
        except NonFiniteUpdateError as err:
            raise non_finite_error(where, str(err)) from err
    if guard_params and not all(np.isfinite(p).all() for p in params.values()):
        raise non_finite_error(where, "the optimizer made a parameter non-finite (a foreign "
                          "optimizer: the parameters could not be kept).")
    return terms


def non_finite_error(where, what):
    label, epoch, step, n_batches = where
    return NonFiniteLossError(f"{label}: epoch {epoch}, step {step}/{n_batches}: {what}",
                              epoch=epoch, step=step)
