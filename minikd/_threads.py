"""How many threads BLAS may use while minikd trains, through threadpoolctl.

minikd's networks are small: a (128, 256) by (256, 256) product is over before a second BLAS
thread has started, and on a busy machine a spinning OpenBLAS thread makes training several
times slower. The training functions (:func:`minikd.fit`, :func:`minikd.train_loop`,
:func:`minikd.distill`) therefore limit BLAS to one thread for their own duration by default,
which also makes float32 results reproducible (they change with the thread count).

:func:`blas_threads` sets the limit for a block with ``threadpoolctl`` (the library
scikit-learn uses for this: it finds every BLAS library the process has loaded, OpenBLAS, MKL
or BLIS, and restores their counts afterwards) and records the choice, so that the training
functions called inside the block use it instead of their default
(:func:`resolve_blas_threads`). The experiment functions (``run_distill``, ``run_sweep``, ...)
take the same limit for their whole duration in their own process (:func:`limits_blas_threads`),
so data generation, prediction and timing outside the trainers are limited too; their worker
processes run with one BLAS thread each.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

from threadpoolctl import threadpool_limits

from ._validation import check_int

__all__ = ["DEFAULT_BLAS_THREADS", "blas_threads", "limits_blas_threads", "resolve_blas_threads"]

DEFAULT_BLAS_THREADS = 1
_CHOSEN = contextvars.ContextVar("minikd_blas_threads", default=None)  # the enclosing block's n


@contextlib.contextmanager
def blas_threads(n):
    """Run the block with at most ``n`` BLAS threads, then restore the previous counts.

    Parameters
    ----------
    n : int or None
        Thread count >= 1; None leaves everything as it is. Training functions called inside
        the block without their own ``blas_threads=`` use ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1):
    ...     product = np.ones((64, 64)) @ np.ones((64, 64))
    >>> float(product[0, 0])
    64.0
    """
    if n is None:
        yield
        return
    n = check_int(n, "n", "blas_threads", low=1)
    token = _CHOSEN.set(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        _CHOSEN.reset(token)


def resolve_blas_threads(n, func):
    """The BLAS thread count of a training function called with ``blas_threads=n``.

    ``n`` itself when given (checked: an int >= 1); otherwise the ``n`` of the enclosing
    :func:`blas_threads` block, if any; otherwise :data:`DEFAULT_BLAS_THREADS` (1).
    """
    if n is not None:
        return check_int(n, "blas_threads", func, low=1)
    chosen = _CHOSEN.get()
    return DEFAULT_BLAS_THREADS if chosen is None else chosen


def limits_blas_threads(func):
    """Decorator of the experiment functions: the body runs under ``blas_threads(n)``, with n
    the enclosing :func:`blas_threads` block's count, else :data:`DEFAULT_BLAS_THREADS` (1).

    To choose: ``with minikd.training.blas_threads(4): run_distill(...)``.
    """
    @functools.wraps(func)
    def limited(*args, **kwargs):
        with blas_threads(resolve_blas_threads(None, func.__name__)):
            return func(*args, **kwargs)

    return limited
