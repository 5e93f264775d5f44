"""The MLP's checks at the public boundary: architecture, memory, caches, gradients, overflow.

:class:`minikd.nn.MLP` validates here, once, what its public methods are given, so that bad
input fails with a message naming the method, the parameter, what was expected and what was
given, before anything is allocated or computed; its ``*_unchecked`` methods trust their callers.
"""

from __future__ import annotations

import os

import numpy as np

from .._validation import as_float_array, param_error

__all__ = ["check_cache", "check_dhidden", "check_dtype", "check_finite_outputs",
           "check_finite_params", "check_grad", "check_memory", "check_params", "check_sizes"]


def check_sizes(sizes, func):
    expected = "a sequence of at least two positive integers"
    try:
        items = list(sizes)
    except TypeError as err:
        raise param_error("sizes", func, expected, repr(sizes), TypeError) from err
    if len(items) < 2:
        raise param_error("sizes", func, expected, repr(items))
    for s in items:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise param_error("sizes", func, expected, repr(items), TypeError)
        if s < 1:
            raise param_error("sizes", func, expected, repr(items))
    return tuple(int(s) for s in items)


def check_dtype(dtype, func):
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype),
                          TypeError) from err
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype))
    return dt


def _memory_bytes():
    """This machine's physical memory in bytes, or None where it cannot be read (not POSIX)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(sizes, dtype, func, *, batch=None):
    """Refuse, before allocating, a network (or, given ``batch`` = N, a forward pass) whose
    arrays would not fit in this machine's memory: a one-line ValueError, not a MemoryError."""
    fan = list(zip(sizes[:-1], sizes[1:], strict=True))  # (fan_in, fan_out) per layer
    if batch is None:  # the parameters, and the float64 draw of the largest W at initialisation
        n = sum(a * b + b for a, b in fan)
        need, what = n * dtype.itemsize + max(a * b for a, b in fan) * 8, f"{n:.3g} parameters"
        name, given = "sizes", list(sizes)
    else:  # a_k, h_k, a dropout mask and h~_k per hidden layer, the logits
        need = 4 * batch * sum(sizes[1:]) * dtype.itemsize
        what, name, given = f"{batch} rows through {list(sizes)}", "x", f"{batch} rows"
    have = _memory_bytes()
    if have is not None and need > have:
        raise param_error(name, func, f"a size whose arrays fit in this machine's memory "
                          f"({have / 2**30:.3g} GiB)", f"{given} ({what}: {need / 2**30:.3g} "
                          f"GiB in {dtype.name})")


def check_finite_outputs(x, outputs, func, *, params, name="x", where=None):
    """Raise when an output (activations, logits; gradients named by ``where``) overflowed to
    inf or NaN: blame NaN or inf ``params`` (the model's) if any, else the input ``name``."""
    for i, a in enumerate(outputs):
        if not np.isfinite(a).all():
            check_finite_params(params, func)
            if where is not None:
                at = where[i]
            else:
                at = "the logits" if i == len(outputs) - 1 else f"hidden layer {i + 1}"
            raise param_error(name, func, "inputs for which the network stays finite",
                              f"|{name}| up to {float(np.abs(x).max()):.3g}, which overflows to "
                              f"inf or NaN in {at}")


def check_grad(g, name, shape, dtype, func):
    """An upstream gradient as a finite array of ``dtype`` and ``shape``, or a clear error."""
    g = as_float_array(g, name, func, ndim=2, dtype=dtype)
    if g.shape != shape:
        raise param_error(name, func, f"an array of shape {shape}", f"shape {g.shape}")
    return g


def check_dhidden(dhidden, n, sizes, dtype, func):
    """``dhidden`` as {hidden-layer index i: finite (N, H_{i+1}) array of ``dtype``}."""
    if not isinstance(dhidden, dict):
        raise param_error("dhidden", func, "a dict mapping hidden-layer index to array",
                          type(dhidden).__name__, TypeError)
    n_hidden = len(sizes) - 2
    checked = {}
    for i, g in dhidden.items():
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) \
                or not 0 <= i < n_hidden:
            raise param_error("dhidden", func, f"keys that are hidden-layer indices in "
                              f"[0, {n_hidden})", f"key {i!r}")
        checked[int(i)] = check_grad(g, f"dhidden[{i}]", (n, sizes[i + 1]), dtype, func)
    return checked


def check_cache(cache, sizes, dtype, func):
    """The batch size N of ``cache``, after checking it is the cache of a forward pass of this
    architecture: ``inputs``, ``hidden`` and ``masks`` of the model's dtype and shapes (N, H_k),
    so that another network's cache is refused instead of broadcast."""
    n_layers = len(sizes) - 1
    expected = f"the ForwardCache of a forward pass of this model ({list(sizes)}, {dtype.name})"
    inputs, hidden, masks = (getattr(cache, f, None) for f in ("inputs", "hidden", "masks"))
    if not (all(isinstance(f, (list, tuple)) for f in (inputs, hidden, masks))
            and len(inputs) == n_layers and len(hidden) == len(masks) == n_layers - 1
            and isinstance(inputs[0], np.ndarray) and inputs[0].ndim == 2):
        raise param_error("cache", func, expected, type(cache).__name__, TypeError)
    n = inputs[0].shape[0]
    fields = [(f"inputs[{k}]", a, sizes[k]) for k, a in enumerate(inputs)]
    fields += [(f"hidden[{i}]", a, sizes[i + 1]) for i, a in enumerate(hidden)]
    fields += [(f"masks[{i}]", a, sizes[i + 1]) for i, a in enumerate(masks) if a is not None]
    for name, a, width in fields:
        if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == (n, width)):
            got = (f"an array of dtype {a.dtype} and shape {a.shape}"
                   if isinstance(a, np.ndarray) else f"a {type(a).__name__}")
            raise param_error("cache", func, expected,
                              f"a cache whose {name} is {got}, not {dtype.name} of shape "
                              f"{(n, width)}")
    return n


def check_params(params, sizes, dtype, func):
    """Raise unless ``params`` (a model's own, which a user may have replaced) holds exactly
    ``W1``, ``b1``, ..., each an array of ``dtype`` and its layer's shape."""
    shapes = {}
    for k in range(1, len(sizes)):
        shapes[f"W{k}"], shapes[f"b{k}"] = (sizes[k - 1], sizes[k]), (sizes[k],)
    got = None
    if not isinstance(params, dict) or params.keys() != shapes.keys():
        got = f"the keys {list(params) if isinstance(params, dict) else type(params).__name__}"
    else:
        for key, shape in shapes.items():
            p = params[key]
            if not (isinstance(p, np.ndarray) and p.dtype == dtype and p.shape == shape):
                got = (f"params[{key!r}] of dtype {p.dtype} and shape {p.shape}"
                       if isinstance(p, np.ndarray) else f"params[{key!r}] a {type(p).__name__}")
                break
    if got is not None:
        raise TypeError(f"The model's params (read by {func}) must be {list(shapes)}, each a "
                        f"{dtype.name} array of its layer's shape (W1 {shapes['W1']}, ...). "
                        f"Got {got} instead.")


def check_finite_params(params, func):
    """Raise when a parameter holds NaN or inf (the cause of non-finite outputs, not the input)."""
    bad = [key for key, p in params.items() if not np.isfinite(p).all()]
    if bad:
        raise ValueError(f"The model's params (read by {func}) must be finite. Got NaN or inf "
                         f"in {bad} instead.")
