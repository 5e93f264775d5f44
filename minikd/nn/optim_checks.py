"""The optimizers' checks at the public boundary: the ``params`` they update, the ``grads`` of a
step. Every problem is a TypeError or ValueError naming the optimizer, before anything moves."""

from __future__ import annotations

import numpy as np

from .._validation import param_error

__all__ = ["check_grads", "check_param"]


def check_param(params, key, func):
    """Raise unless ``params[key]`` is a writeable float ndarray (updated in place)."""
    p = params[key]
    if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
        what = f"dtype {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__
        raise param_error("params", func, "a dict of float ndarrays", f"{what} at key {key!r}",
                          TypeError)
    if not p.flags.writeable:
        raise param_error("params", func, "a dict of writeable arrays (updated in place)",
                          f"a read-only array at key {key!r}", TypeError)


def check_grads(params, grads, func):
    """``grads`` as arrays of their parameters' dtypes (a value beyond that dtype's range becomes
    inf, which the step refuses), after checking every parameter they name."""
    if not isinstance(grads, dict):
        raise param_error("grads", func, "a dict of arrays keyed like params",
                          type(grads).__name__, TypeError)
    checked = {}
    for key, g in grads.items():
        p = params.get(key)
        if p is None:
            raise param_error("grads", func, f"keys of params {list(params)}", f"key {key!r}")
        if not (isinstance(p, np.ndarray) and p.dtype.kind == "f" and p.flags.writeable):
            check_param(params, key, func.split(".")[0])  # raises
        if not isinstance(g, np.ndarray):
            try:
                g = np.asarray(g)
            except (ValueError, TypeError) as err:  # a ragged nested list
                raise param_error("grads", func, "arrays shaped like params",
                                  f"a ragged sequence at key {key!r}", TypeError) from err
        if g.shape != p.shape:
            raise param_error("grads", func, "arrays shaped like params",
                              f"key {key!r} with shape {g.shape} (params: {p.shape})")
        if g.dtype != p.dtype:
            if g.dtype.kind not in "fiu":
                raise param_error("grads", func, "real (float or int) arrays",
                                  f"dtype {g.dtype} at key {key!r}", TypeError)
            with np.errstate(over="ignore"):  # beyond the dtype's range: inf, refused
                g = g.astype(p.dtype)
        checked[key] = g
    return checked
