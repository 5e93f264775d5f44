"""Checks at the public boundary.

Every public function converts and checks its inputs here, once, so that bad input fails with a
message that names the function, the parameter, what was expected and what was given, in the
shape scikit-learn uses:

    The 'temperature' parameter of kd_loss must be a float in the range [1e-6, 1e6].
    Got -1.0 instead.

Nothing below the boundary re-validates: the private ``_``-functions trust their callers.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

__all__ = [
    "as_float_array",
    "as_labels",
    "check_bool",
    "check_choice",
    "check_feature_range",
    "check_fraction",
    "check_int",
    "check_labels",
    "check_logit_range",
    "check_mask",
    "check_memory",
    "check_nonnegative",
    "check_positive",
    "check_pair",
    "check_rng",
    "check_same_shape",
    "check_temperature",
    "check_unit_interval",
    "common_float_dtype",
    "feature_limit",
    "logit_limit",
    "param_error",
]


def param_error(name, func, expected, got, exc=ValueError):
    """The standard error: ``The 'name' parameter of func must be ... Got ... instead.``"""
    return exc(f"The '{name}' parameter of {func} must be {expected}. Got {got} instead.")


def _describe(x):
    """A short, bounded description of a bad value for an error message."""
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype} and shape {x.shape}"
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def common_float_dtype(*arrays):
    """float32 when every array is float32, float64 otherwise (ints, float16 and mixes included)."""
    if all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_array(x, name, func, *, ndim=None, min_ndim=1, dtype=None, allow_empty=False,
                   check_finite=True):
    """Convert an array-like to a finite float array, or raise a clear error.

    Parameters
    ----------
    x : array_like
        The input.
    name, func : str
        Parameter and function names for the error message.
    ndim : int, optional
        Exact number of dimensions required.
    min_ndim : int
        Minimum number of dimensions when ``ndim`` is None.
    dtype : numpy dtype, optional
        Target dtype. By default float32 stays float32 and anything else real becomes float64.
    allow_empty : bool
        Whether a zero-size array is acceptable.
    check_finite : bool, default True
        Refuse NaN/inf entries. A caller that runs :func:`check_logit_range` right after (which
        refuses them too, with the same message) may skip this pass.

    Returns
    -------
    ndarray
        A float32 or float64 array (a view when no conversion was needed).

    Raises
    ------
    TypeError
        For bool, complex, object, string or otherwise non-numeric input.
    ValueError
        For a wrong number of dimensions, an empty array, or NaN/inf entries.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as err:  # ragged nested lists and the like
            raise param_error(name, func, "a rectangular array of real numbers", _describe(x),
                              TypeError) from err
    kind = arr.dtype.kind
    if kind not in "fiu":
        what = {"b": "a boolean array", "c": "a complex array", "O": "an object array",
                "U": "a string array", "S": "a bytes array"}.get(kind, f"dtype {arr.dtype}")
        raise param_error(name, func, "an array of real numbers (float or int)", what, TypeError)
    if ndim is not None and arr.ndim != ndim:
        raise param_error(name, func, f"a {ndim}-D array", f"a {arr.ndim}-D array of shape "
                          f"{arr.shape}")
    if ndim is None and arr.ndim < min_ndim:
        raise param_error(name, func, f"an array with at least {min_ndim} dimension(s)",
                          f"a {arr.ndim}-D array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise param_error(name, func, "a non-empty array", f"an empty array of shape {arr.shape}")
    if dtype is None:
        dtype = np.float32 if arr.dtype == np.float32 else np.float64
    if arr.dtype != dtype:
        original = arr
        with np.errstate(over="ignore"):  # out-of-range values become inf, reported below
            arr = arr.astype(dtype)
        if check_finite and not np.isfinite(arr).all() and np.isfinite(original).all():
            raise param_error(name, func, f"values that fit in {np.dtype(dtype).name}",
                              f"|x| up to {float(np.abs(original).max()):.3g}")
    if check_finite:
        _check_finite(arr, name, func)
    return arr


def _check_finite(arr, name, func):
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise param_error(name, func, "finite (no NaN or inf)",
                          f"{arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}")


_FLOAT_MAX = {np.dtype(np.float32): float(np.finfo(np.float32).max),
              np.dtype(np.float64): float(np.finfo(np.float64).max)}


def logit_limit(dtype, temperature):
    """The largest |z| check_logit_range accepts: 1e-10 of the largest float / max(T, 1/T)."""
    return _FLOAT_MAX[np.dtype(dtype)] * 1e-10 / max(temperature, 1.0 / temperature)


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
        _check_finite(z, name, func)
        got = max(abs(float(z.min())), abs(float(z.max())))
        raise param_error(name, func, f"logits with |z| <= {limit:.3g} at temperature "
                          f"{temperature!r} (larger ones overflow)", f"|z| = {got:.3g}")


def feature_limit(dtype, power=1.0):
    """The largest |x| check_feature_range accepts: (sqrt(max float) / 1e3) ** (1 / power)."""
    return (math.sqrt(_FLOAT_MAX[dtype]) * 1e-3) ** (1.0 / power)


def check_feature_range(x, name, func, *, power=1.0):
    """Raise unless ``x`` is finite and every |x| ** power stays below sqrt(max float) / 1e3.

    Feature and relation losses square their inputs and sum the squares (MSE, Gram matrices,
    pairwise distances, norms), so finite features above the square root of the largest float
    give inf or nan. The bound (1.8e16 for float32, 1.3e151 for float64) leaves a factor of 1e6
    for the sums. ``power`` is for inputs raised to a power first (attention maps: |f|^p).
    """
    limit = feature_limit(x.dtype, power)
    if not (-limit <= x.min() and x.max() <= limit):  # False for NaN too
        _check_finite(x, name, func)
        got = max(abs(float(x.min())), abs(float(x.max())))
        what = f"values with |x| <= {limit:.3g}"
        if power != 1.0:
            what += f" (|x|^p <= {feature_limit(x.dtype):.3g} at p = {power:g})"
        raise param_error(name, func, f"{what}; larger ones overflow in {x.dtype}",
                          f"|x| = {got:.3g}")


def check_same_shape(a, b, name_a, name_b, func):
    """Raise if two arrays do not have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"The '{name_a}' and '{name_b}' parameters of {func} must have the same "
                         f"shape. Got {a.shape} and {b.shape} instead.")


def _as_real_scalar(x, name, func, expected):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise param_error(name, func, expected, _describe(x), TypeError)
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
    t = _as_real_scalar(temperature, name, func, expected)
    if not (low <= t <= high):  # False for NaN too
        raise param_error(name, func, expected, repr(t))
    return t


def check_positive(value, name, func):
    """Return ``value`` as a float, or raise unless it is a finite real number > 0."""
    expected = "a float in the range (0, inf)"
    v = _as_real_scalar(value, name, func, expected)
    if not (math.isfinite(v) and v > 0):
        raise param_error(name, func, expected, repr(v))
    return v


def check_nonnegative(value, name, func, *, high=math.inf):
    """Return ``value`` as a float, or raise unless it is a finite real number in [0, high]."""
    expected = f"a float in the range [0, {'inf)' if high == math.inf else f'{high:g}]'}"
    v = _as_real_scalar(value, name, func, expected)
    if not (math.isfinite(v) and 0 <= v <= high):
        raise param_error(name, func, expected, repr(v))
    return v


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


def check_unit_interval(value, name, func):
    """Return ``value`` as a float, or raise unless it is a real number in [0, 1]."""
    expected = "a float in the range [0, 1]"
    v = _as_real_scalar(value, name, func, expected)
    if not (0.0 <= v <= 1.0):
        raise param_error(name, func, expected, repr(v))
    return v


def check_int(value, name, func, *, low=None, high=None):
    """Return ``value`` as an int, or raise unless it is an integer (not a bool) in [low, high]."""
    expected = (f"an int in the range [{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}]")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise param_error(name, func, expected, _describe(value), TypeError)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise param_error(name, func, expected, repr(v))
    return v


def check_fraction(value, name, func, *, closed_low=True, closed_high=False):
    """Return ``value`` as a float, or raise unless it is a real number in the unit interval with
    the given ends: [0, 1) by default (momentum, Adam's betas); (0, 1) for a split fraction."""
    expected = f"a float in the range {'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
    v = _as_real_scalar(value, name, func, expected)
    low_ok = v >= 0.0 if closed_low else v > 0.0
    high_ok = v <= 1.0 if closed_high else v < 1.0
    if not (low_ok and high_ok):  # False for NaN too
        raise param_error(name, func, expected, repr(v))
    return v


def check_bool(value, name, func):
    """Return ``value`` as a bool, or raise TypeError unless it is a bool (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise param_error(name, func, "a bool", _describe(value), TypeError)
    return bool(value)


def check_choice(value, name, func, choices):
    """Return ``value``, or raise ValueError unless it is one of ``choices`` (same type, equal)."""
    for c in choices:
        if isinstance(value, type(c)) and value == c:
            return value
    raise param_error(name, func, f"one of {tuple(choices)}", _describe(value))


def as_labels(labels, shape, n_classes, func, *, name="labels", ignore_index=None):
    """Convert class labels to an int64 array of the given shape, each in [0, n_classes).

    Parameters
    ----------
    labels : array_like of int
        Class indices; float arrays holding whole numbers are refused (a float label usually
        means a probability was passed where an index was meant).
    shape : tuple of int
        Required shape: the logits' shape without the class axis.
    n_classes : int
        Number of classes C.
    ignore_index : int, optional
        A label value that marks a position to skip (Hugging Face uses -100); allowed besides
        the class range.

    Returns
    -------
    ndarray of int64 and shape ``shape``
    """
    try:
        arr = np.asarray(labels)
    except (ValueError, TypeError) as err:
        raise param_error(name, func, "an integer array", _describe(labels), TypeError) from err
    if arr.dtype.kind not in "iu":
        raise param_error(name, func, f"an integer array of class indices of shape {shape}",
                          f"dtype {arr.dtype}", TypeError)
    if arr.shape != tuple(shape):
        raise param_error(name, func, f"an integer array of shape {tuple(shape)} (one label per "
                          "row of logits)", f"shape {arr.shape}")
    # checked in the labels' own dtype: a cast to int64 first would wrap a uint64 label of
    # 2**64 - 100 to -100, the ignore_index
    valid = (arr >= 0) & (arr < n_classes)  # (...,)
    if ignore_index is not None:
        valid |= arr == ignore_index
    if not valid.all():
        bad = arr[~valid][0]
        allowed = f"in [0, {n_classes})"
        if ignore_index is not None:
            allowed += f" or equal to ignore_index={ignore_index}"
        raise param_error(name, func, f"class indices {allowed}", f"label {int(bad)}")
    return arr.astype(np.int64, copy=False)


def check_pair(student, teacher, func, *, names=("student_logits", "teacher_logits"),
               temperature=None, match="shape", ndim=None, min_ndim=2, power=1.0):
    """The one check of a student/teacher pair: two float arrays of one dtype, in range.

    Parameters
    ----------
    student, teacher : array_like
        Converted like :func:`as_float_array`; float32 only when both are float32.
    func : str
        The public function's name, for the messages.
    names : (str, str)
        The two parameters' names.
    temperature : float, optional
        Logits: each must satisfy :func:`check_logit_range` at this T. Without it the pair are
        features, whose squares are summed: :func:`check_feature_range` (with ``power``).
    match : {"shape", "rows"}
        Same shape, or only the same number of rows (relation losses compare N x N matrices).
    ndim, min_ndim : int
        Exact or minimum number of dimensions of each.

    Returns
    -------
    (ndarray, ndarray)
        The student and the teacher, as arrays of one float dtype.
    """
    s = as_float_array(student, names[0], func, ndim=ndim, min_ndim=min_ndim)
    t = as_float_array(teacher, names[1], func, ndim=ndim, min_ndim=min_ndim)
    if match == "shape":
        check_same_shape(s, t, names[0], names[1], func)
    elif t.shape[0] != s.shape[0]:
        raise param_error(names[1], func, f"an array with N = {s.shape[0]} rows (one per row of "
                          f"{names[0]})", f"shape {t.shape}")
    dtype = common_float_dtype(s, t)
    s, t = s.astype(dtype, copy=False), t.astype(dtype, copy=False)
    for x, name in ((s, names[0]), (t, names[1])):
        if temperature is None:
            check_feature_range(x, name, func, power=power)
        else:
            check_logit_range(x, temperature, name, func)
    return s, t


def check_mask(mask, shape, func):
    """``mask`` as a bool array of the positions' shape, or None (every position selected)."""
    if mask is None:
        return None
    try:
        m = np.asarray(mask)
    except (ValueError, TypeError) as err:  # a ragged nested list
        raise param_error("mask", func, f"a boolean array of shape {tuple(shape)}",
                          _describe(mask), TypeError) from err
    if m.dtype != np.bool_:
        raise param_error("mask", func, "a boolean array over the leading axes",
                          f"dtype {m.dtype}", TypeError)
    if m.shape != tuple(shape):
        raise param_error("mask", func, f"a boolean array of shape {tuple(shape)}",
                          f"shape {m.shape}")
    return m


def check_labels(labels, shape, n_classes, func, *, ignore_index=-100, mask=None):
    """Labels and mask of a label-taking loss, checked together.

    Returns ``(y, selected)``: int64 labels of ``shape`` safe to index with (a position whose
    label is ``ignore_index`` gets class 0), and the bool mask of the positions that count
    (``mask`` without the ignored positions; None when every position counts).
    """
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise param_error("ignore_index", func, "an int or None", _describe(ignore_index),
                          TypeError)
    y = as_labels(labels, shape, n_classes, func, ignore_index=ignore_index)
    selected = check_mask(mask, shape, func)
    if ignore_index is not None:
        ignored = y == ignore_index  # (...,)
        if ignored.any():
            y = np.where(ignored, 0, y)
            selected = ~ignored if selected is None else selected & ~ignored
    return y, selected


def check_rng(rng, func, name="rng"):
    """``numpy.random.default_rng(rng)``, or a TypeError or ValueError naming ``func`` when
    ``rng`` is not a seed (None, a non-negative int or a sequence of them, a SeedSequence, a
    BitGenerator or a Generator)."""
    if isinstance(rng, np.random.Generator):
        return rng
    expected = "an int >= 0, a numpy.random.Generator or None"
    if isinstance(rng, (bool, np.bool_, float, complex, str, bytes)):
        raise param_error(name, func, expected, _describe(rng), TypeError)
    try:
        return np.random.default_rng(rng)
    except TypeError as err:
        raise param_error(name, func, expected, _describe(rng), TypeError) from err
    except ValueError as err:  # a negative seed
        raise param_error(name, func, expected, _describe(rng)) from err
