"""Arrays at the boundary: real, finite, of the expected dimensions, in one float dtype."""

from __future__ import annotations

import numpy as np

from .messages import describe, param_error

__all__ = ["as_float_array", "check_all_finite", "check_same_shape", "common_float_dtype"]


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
            raise param_error(name, func, "a rectangular array of real numbers", describe(x),
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
        check_all_finite(arr, name, func)
    return arr


def check_all_finite(arr, name, func):
    """Raise ValueError naming the first NaN or inf of ``arr`` and its index."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise param_error(name, func, "finite (no NaN or inf)",
                          f"{arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}")


def check_same_shape(a, b, name_a, name_b, func):
    """Raise if two arrays do not have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"The '{name_a}' and '{name_b}' parameters of {func} must have the same "
                         f"shape. Got {a.shape} and {b.shape} instead.")
