"""Shared hypothesis strategies for logits, labels and temperatures (STYLE.md, "Testing")."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# Temperatures from 0.05 to 100, drawn log-uniformly-ish so both ends are hit, never only T = 1.
temperatures = st.one_of(
    st.floats(0.05, 1.0, exclude_max=True), st.floats(1.0, 100.0, exclude_min=True),
    st.sampled_from([0.05, 0.1, 0.5, 2.0, 4.0, 20.0, 100.0]),
)

_elem = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def logits(draw, n=None, c=None, *, max_n=4, min_c=2, max_c=6, lead=None):
    """float64 logits of shape (n, c), or lead + (c,), at a random scale up to 1e4."""
    n = draw(st.integers(1, max_n)) if n is None else n
    c = draw(st.integers(min_c, max_c)) if c is None else c
    shape = (n, c) if lead is None else tuple(lead) + (c,)
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 1e4]))
    raw = draw(arrays(np.float64, shape, elements=st.floats(-1.0, 1.0, allow_subnormal=False)))
    full = draw(arrays(np.float64, shape, elements=_elem))
    return raw * scale if draw(st.booleans()) else full


@st.composite
def logit_pair(draw, *, max_n=4, min_c=2, max_c=6, lead=None):
    """(student, teacher) of one shape, plus a temperature."""
    zs = draw(logits(max_n=max_n, min_c=min_c, max_c=max_c, lead=lead))
    zt = draw(logits(n=zs.shape[0], c=zs.shape[-1], lead=zs.shape[:-1] if lead else None))
    return zs, zt, draw(temperatures)


def labels_for(rng, shape, n_classes):
    """Integer labels of the given leading shape."""
    return rng.integers(0, n_classes, size=shape)
