"""Finite values that still overflow: the largest logits and features a loss can take, and the
largest allocation the machine can hold."""

from __future__ import annotations

import math
import os

import numpy as np

from .arrays import check_all_finite
from .messages import param_error

__all__ = ["FLOAT_MAX", "check_feature_range", "check_logit_range", "check_memory", "feature_limit",
           "logit_limit", "memory_limit"]


FLOAT_MAX = {np.dtype(np.float32): float(np.finfo(np.float32).max),
              np.dtype(np.float64): float(np.finfo(np.float64).max)}


def logit_limit(dtype, temperature):
    """The largest |z| check_logit_range accepts: 1e-10 of the largest float / max(T, 1/T)."""
    return FLOAT_MAX[np.dtype(dtype)] * 1e-10 / max(temperature, 1.0 / temperature)


def check_logit_range(z, temperature, name, func):
    """Raise unless ``z`` is finite and every |z| / T (and |z| · T) stays far from overflow.

    Finite logits can still overflow inside a loss: ``z - max(z)`` for a row spanning +-1e308,
    ``z / T`` for tiny T, ``T² · KL`` for huge T. Such logits are meaningless (a softmax is
    already one-hot at |z / T| ~ 1e3), so they are refused with a clear message instead of
    giving inf or nan. The bound is 1e-10 of the largest float of ``z``'s dtype (1.8e298 for
    float64, 3.4e28 for float32), divided by max(T, 1/T).
    """
    limit = logit_limit(z.dtype, temperature)
    if not (-limit <= z.min() and z.max() <= limit):  # False for NaN too
        check_all_finite(z, name, func)
        got = max(abs(float(z.min())), abs(float(z.max())))
        raise param_error(name, func, f"logits with |z| <= {limit:.3g} at temperature "
                          f"{temperature!r} (larger ones overflow)", f"|z| = {got:.3g}")


def feature_limit(dtype, power=1.0):
    """The largest |x| check_feature_range accepts: (sqrt(max float) / 1e3) ** (1 / power)."""
    return (math.sqrt(FLOAT_MAX[dtype]) * 1e-3) ** (1.0 / power)


def check_feature_range(x, name, func, *, power=1.0):
    """Raise unless ``x`` is finite and every |x| ** power stays below sqrt(max float) / 1e3.

    Feature and relation losses square their inputs and sum the squares (MSE, Gram matrices,
    pairwise distances, norms), so finite features above the square root of the largest float
    give inf or nan. The bound (1.8e16 for float32, 1.3e151 for float64) leaves a factor of 1e6
    for the sums. ``power`` is for inputs raised to a power first (attention maps: |f|^p).
    """
    limit = feature_limit(x.dtype, power)
    if not (-limit <= x.min() and x.max() <= limit):  # False for NaN too
        check_all_finite(x, name, func)
        got = max(abs(float(x.min())), abs(float(x.max())))
        what = f"values with |x| <= {limit:.3g}"
        if power != 1.0:
            what += f" (|x|^p <= {feature_limit(x.dtype):.3g} at p = {power:g})"
        raise param_error(name, func, f"{what}; larger ones overflow in {x.dtype}",
                          f"|x| = {got:.3g}")


def memory_limit():
    """The machine's physical memory in bytes (no single array may need more)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: a generous fixed budget
        return 64 * 2**30


def check_memory(nbytes, name, func, what):
    """Raise ValueError, before anything is allocated, when ``nbytes`` (an estimate of what
    parameter ``name`` asks for; ``what`` says what needs it) exceeds the machine's memory."""
    limit = memory_limit()
    if nbytes > limit:
        raise param_error(name, func, f"a size whose {what} in this machine's "
                          f"{limit / 2**30:,.1f} GiB", f"one needing about "
                          f"{nbytes / 2**30:,.1f} GiB")
