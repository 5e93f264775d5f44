"""Scalars at the boundary: temperatures, positive and bounded floats, ints, bools, choices and
random generators."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .messages import describe, param_error

__all__ = ["TEMPERATURE_RANGE", "as_real_scalar", "check_bool", "check_choice", "check_fraction",
           "check_int", "check_nonnegative", "check_positive", "check_rng", "check_temperature",
           "check_unit_interval"]


def as_real_scalar(x, name, func, expected):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise param_error(name, func, expected, describe(x), TypeError)
    return float(x)


TEMPERATURE_RANGE = (1e-6, 1e6)


def check_temperature(temperature, func, name="temperature"):
    """Return ``temperature`` as a float, or raise unless it is a real number in [1e-6, 1e6].

    Outside that range a float computation breaks although T is finite: ``z / T`` overflows
    for float32 at T ~ 1e-46 (a NaN softmax), ``T**2`` overflows at T ~ 2e19 (float32) or 1e154
    (float64) and meets a zero KL (NaN). Papers and libraries use 1 to 20; tests use 0.05 to 100.
    """
    low, high = TEMPERATURE_RANGE
    expected = "a float in the range [1e-6, 1e6]"
    t = as_real_scalar(temperature, name, func, expected)
    if not (low <= t <= high):  # False for NaN too
        raise param_error(name, func, expected, repr(t))
    return t


def check_positive(value, name, func):
    """Return ``value`` as a float, or raise unless it is a finite real number > 0."""
    expected = "a float in the range (0, inf)"
    v = as_real_scalar(value, name, func, expected)
    if not (math.isfinite(v) and v > 0):
        raise param_error(name, func, expected, repr(v))
    return v


def check_nonnegative(value, name, func, *, high=math.inf):
    """Return ``value`` as a float, or raise unless it is a finite real number in [0, high]."""
    expected = f"a float in the range [0, {'inf)' if high == math.inf else f'{high:g}]'}"
    v = as_real_scalar(value, name, func, expected)
    if not (math.isfinite(v) and 0 <= v <= high):
        raise param_error(name, func, expected, repr(v))
    return v


def check_unit_interval(value, name, func):
    """Return ``value`` as a float, or raise unless it is a real number in [0, 1]."""
    expected = "a float in the range [0, 1]"
    v = as_real_scalar(value, name, func, expected)
    if not (0.0 <= v <= 1.0):
        raise param_error(name, func, expected, repr(v))
    return v


def check_int(value, name, func, *, low=None, high=None):
    """Return ``value`` as an int, or raise unless it is an integer (not a bool) in [low, high]."""
    expected = (f"an int in the range [{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}]")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise param_error(name, func, expected, describe(value), TypeError)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise param_error(name, func, expected, repr(v))
    return v


def check_fraction(value, name, func, *, closed_low=True, closed_high=False):
    """Return ``value`` as a float, or raise unless it is a real number in the unit interval with
    the given ends: [0, 1) by default (momentum, Adam's betas); (0, 1) for a split fraction."""
    expected = f"a float in the range {'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
    v = as_real_scalar(value, name, func, expected)
    low_ok = v >= 0.0 if closed_low else v > 0.0
    high_ok = v <= 1.0 if closed_high else v < 1.0
    if not (low_ok and high_ok):  # False for NaN too
        raise param_error(name, func, expected, repr(v))
    return v


def check_bool(value, name, func):
    """Return ``value`` as a bool, or raise TypeError unless it is a bool (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise param_error(name, func, "a bool", describe(value), TypeError)
    return bool(value)


def check_choice(value, name, func, choices):
    """Return ``value``, or raise ValueError unless it is one of ``choices`` (same type, equal)."""
    for c in choices:
        if isinstance(value, type(c)) and value == c:
            return value
    raise param_error(name, func, f"one of {tuple(choices)}", describe(value))


def check_rng(rng, func, name="rng"):
    """``numpy.random.default_rng(rng)``, or a TypeError or ValueError naming ``func`` when
    ``rng`` is not a seed (None, a non-negative int or a sequence of them, a SeedSequence, a
    BitGenerator or a Generator)."""
    if isinstance(rng, np.random.Generator):
        return rng
    expected = "an int >= 0, a numpy.random.Generator or None"
    if isinstance(rng, (bool, np.bool_, float, complex, str, bytes)):
        raise param_error(name, func, expected, describe(rng), TypeError)
    try:
        return np.random.default_rng(rng)
    except TypeError as err:
        raise param_error(name, func, expected, describe(rng), TypeError) from err
    except ValueError as err:  # a negative seed
        raise param_error(name, func, expected, describe(rng)) from err
