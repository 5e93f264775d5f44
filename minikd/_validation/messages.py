"""The one error message shape of the boundary checks, and a bounded description of a bad
value for it."""

from __future__ import annotations

import numpy as np

__all__ = ["describe", "param_error"]


def param_error(name, func, expected, got, exc=ValueError):
    """The standard error: ``The 'name' parameter of func must be ... Got ... instead.``"""
    return exc(f"The '{name}' parameter of {func} must be {expected}. Got {got} instead.")


def describe(x):
    """A short, bounded description of a bad value for an error message."""
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype} and shape {x.shape}"
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."
