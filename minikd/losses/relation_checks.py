"""The boundary checks the relation losses share beyond :func:`minikd._validation.check_pair`:
Gram entries and pairwise distances that must not overflow, and (N, N) or (N, N, N) arrays that
must fit in memory. Not loss math: see :mod:`minikd.losses.rkd` and :mod:`minikd.losses.relations`.
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_memory, feature_limit, param_error

__all__ = ["NAMES", "check_gram_range", "check_relation_memory"]

NAMES = ("student_features", "teacher_features")


def check_gram_range(s, t, func):
    """Gram entries and squared distances (up to 4 F max|x|²) must not overflow: check_pair's
    bound, sqrt(max float) / 1e3, leaves room for 1e5 of them; wider rows get a lower bound."""
    for x, name in ((s, NAMES[0]), (t, NAMES[1])):
        F = x[0].size
        limit = feature_limit(x.dtype) * math.sqrt(1e5 / F)
        if F > 1e5 and np.abs(x).max() > limit:
            raise param_error(name, func, f"values with |x| <= {limit:.3g} for rows of {F} "
                              f"features (larger ones overflow in {x.dtype})",
                              f"|x| = {np.abs(x).max():.3g}")


def check_relation_memory(s, t, func, *, triples=False):
    """The batch's arrays must fit in memory; measured peaks: about 12 N² + 6 N F numbers, or
    6 N³ + 6 N² F for RKD angle's (N, N, N) triples."""
    N, F = len(s), max(s[0].size, t[0].size)
    numbers = 6 * N**3 + 6 * N**2 * F if triples else 12 * N**2 + 6 * N * F
    check_memory(numbers * s.dtype.itemsize, NAMES[0], func,
                 f"{'(N, N, N) triples' if triples else '(N, N) matrices'} for N = {N} fit")
