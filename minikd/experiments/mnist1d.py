r"""The arithmetic of MNIST-1D (Greydanus & Kobak 2024), behind :func:`minikd.data.make_mnist1d`.

Written anew from the paper's recipe and the reference package ``mnist1d`` (Apache License 2.0),
whose ten templates are reproduced here as data. Every step below carries the number it has in
``make_mnist1d``'s docstring; the operations and their order are those of the package, so a seed
gives the package's numbers bit for bit. Arguments here are trusted: ``make_mnist1d`` checks them.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["generate", "mnist1d_templates"]

# The ten hand-drawn templates of Greydanus & Kobak (2024), Fig. 1: one 12-point curve per digit
# 0..9, as published in the mnist1d package (Apache-2.0). Rows are digits.
_TEMPLATES_RAW = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],        # 0
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],       # 1
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],     # 2
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],           # 3
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],         # 4
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],             # 5
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],         # 6
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],       # 7
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],           # 8
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],           # 9
], dtype=np.float64)  # (10, 12)

# The package adds this to the template before padding so that template points stay non-zero and
# only the padding is replaced by correlated noise (step 5 below).
_EPS = 1e-8


def mnist1d_templates():
    r"""The ten MNIST-1D templates, normalised as in the paper.

    Each raw 12-point curve is whitened (mean 0, population std 1), shifted so that it starts at
    0, and divided by 6.

    Returns
    -------
    ndarray of shape (10, 12), float64
        Row ``c`` is the template of digit ``c``.

    Examples
    --------
    >>> t = mnist1d_templates()
    >>> t.shape, float(t[:, 0].max())
    ((10, 12), 0.0)
    """
    x = _TEMPLATES_RAW.copy()  # (10, 12)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True)
    x -= x[:, :1]  # every signal starts at 0
    return x / 6.0


def _resample(y, n):
    r"""Resample each row of ``y`` linearly from ``m`` to ``n`` evenly spaced points on [0, 1].

    Same arithmetic as ``np.interp(linspace(0, 1, n), linspace(0, 1, m), row)`` for every row
    (which scipy's ``interp1d(kind="linear")`` delegates to for 1-D data), done for all rows at
    once: :math:`y(s) = y_j + \frac{y_{j+1} - y_j}{x_{j+1} - x_j}(s - x_j)` with
    :math:`x_j \le s < x_{j+1}`, and exactly :math:`y_j` where :math:`s = x_j`.
    """
    m = y.shape[-1]
    xp = np.linspace(0.0, 1.0, m)  # (m,)
    xq = np.linspace(0.0, 1.0, n)  # (n,)
    j = np.searchsorted(xp, xq, side="right") - 1  # (n,) left neighbour, m - 1 at s = 1
    lo = np.minimum(j, m - 2)
    slope = (y[..., lo + 1] - y[..., lo]) / (xp[lo + 1] - xp[lo])  # (..., n)
    out = slope * (xq - xp[lo]) + y[..., lo]  # (..., n)
    hit = xq == xp[j]
    out[..., hit] = y[..., j[hit]]
    return out


def _draws(rs, n, length, max_translation):
    """The random numbers of every example, in the order the mnist1d package draws them.

    A legacy RandomState is drawn from example by example (rand, rand, randint, randn(L),
    randn(L), rand), which is the package's global stream; a Generator draws in blocks.
    """
    if isinstance(rs, np.random.RandomState):
        u_pad, u_scale, u_shear = np.empty(n), np.empty(n), np.empty(n)
        shift = np.empty(n, dtype=np.int64)
        g_corr, g_iid = np.empty((n, length)), np.empty((n, length))
        for i in range(n):  # the legacy stream interleaves the draws of one example
            u_pad[i] = rs.random_sample()
            u_scale[i] = rs.random_sample()
            shift[i] = rs.randint(max_translation)
            g_corr[i] = rs.standard_normal(length)
            g_iid[i] = rs.standard_normal(length)
            u_shear[i] = rs.random_sample()
        return u_pad, u_scale, shift, g_corr, g_iid, u_shear
    return (rs.random(n), rs.random(n), rs.integers(max_translation, size=n),
            rs.standard_normal((n, length)), rs.standard_normal((n, length)), rs.random(n))


def generate(rs, *, per_class, padding, scale_coeff, max_translation, corr_noise_scale,
             iid_noise_scale, shear_scale, shuffle_seq, length):
    """All ``10 * per_class`` examples, shuffled and standardised: (x (N, length) float64, y (N,)).

    ``rs`` is a legacy RandomState (the package's stream) or a Generator.
    """
    p_lo, p_hi = padding
    n_points = _TEMPLATES_RAW.shape[1] + p_hi  # L = 72 by default
    labels = np.repeat(np.arange(10, dtype=np.int64), per_class)  # (N,) digit-major, as drawn
    u_pad, u_scale, shift, g_corr, g_iid, u_shear = _draws(rs, labels.size, n_points,
                                                           max_translation)

    # Steps 1-3 depend only on (digit, p): dilate each of the 10 x (p_hi - p_lo + 1) padded
    # templates once and look the examples up.
    templates = mnist1d_templates() + _EPS  # (10, 12)
    table = np.empty((10, p_hi - p_lo + 1, n_points))
    for p in range(p_lo, p_hi + 1):
        padded = np.concatenate([templates, np.zeros((10, p))], axis=1)  # (10, 12 + p)
        table[:, p - p_lo] = _resample(padded, n_points)  # (10, L)
    p_idx = (u_pad * (p_hi - p_lo + 1)).astype(np.int64)  # p - p_lo, floor as int() does
    x = table[labels, p_idx]  # (N, L)

    x *= (1.0 + scale_coeff * (u_scale - 0.5))[:, None]  # step 4
    cols = (np.arange(n_points) - shift[:, None]) % n_points  # (N, L) step 5: roll right by k
    x = np.take_along_axis(x, cols, axis=1)
    corr = gaussian_filter1d(corr_noise_scale * g_corr, 2.0, axis=1)  # (N, L) step 6
    x = np.where(x != 0.0, x, corr)
    x = x + iid_noise_scale * g_iid  # step 7
    x = x - (shear_scale * (u_shear - 0.5))[:, None] * np.linspace(-0.5, 0.5, n_points)  # step 8
    x = _resample(x, length)  # (N, length) step 9

    order = rs.permutation(labels.size)  # then shuffle the examples, optionally the time axis
    x, y = x[order], labels[order]
    if shuffle_seq:
        x = x[:, rs.permutation(length)]
    x = (x - x.mean()) / x.std()  # one mean and one std for the whole set, train and test
    return x, y
