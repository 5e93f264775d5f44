"""Limit the number of BLAS threads for a block of code.

minikd's networks are small: a (128, 256) by (256, 256) product is over before a second BLAS
thread has started, and on a busy machine a spinning OpenBLAS thread makes training several
times slower. The experiment commands therefore train on one thread by default, which also
makes float32 results reproducible (they change with the thread count).

:func:`blas_threads` uses ``threadpoolctl`` when it is installed, and otherwise calls OpenBLAS's
own ``openblas_set_num_threads`` (under any of its prefixed names) in every OpenBLAS library
this process has loaded (found in ``/proc/self/maps``); elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes

__all__ = ["blas_threads"]

# (set, get) symbol pairs: plain OpenBLAS, and the scipy-openblas builds bundled with NumPy wheels.
_SYMBOLS = [
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
]


def _openblas_controls():
    """[(set, get)] for every loaded OpenBLAS library whose controls we can find."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            maps = fh.read()
    except OSError:  # not Linux
        return []
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                controls.append((getattr(lib, set_name), getattr(lib, get_name)))
                break
    return controls


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with at most ``n`` BLAS threads, then restore the previous count.

    Parameters
    ----------
    n : int or None
        Thread count; None leaves everything as it is.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
        return
    controls = _openblas_controls()
    before = [get() for _, get in controls]
    for set_, _ in controls:
        set_(int(n))
    try:
        yield
    finally:
        for (set_, _), old in zip(controls, before, strict=True):
            set_(int(old))
