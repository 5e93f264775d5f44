r"""MNIST-1D (Greydanus & Kobak 2024): :func:`make_mnist1d` (also ``minikd.data.make_mnist1d``)
checks its arguments and :func:`generate` does the arithmetic.

Written anew from the paper's recipe and the reference package ``mnist1d`` (Apache License 2.0),
whose ten templates are reproduced here as data. Every step below carries the number it has in
``make_mnist1d``'s docstring; the operations and their order are those of the package, so a seed
gives the package's numbers bit for bit. ``generate``'s arguments are trusted:
``make_mnist1d`` checks them.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .._validation import (
    check_bool,
    check_fraction,
    check_int,
    check_memory,
    check_nonnegative,
    param_error,
)
from .split import Split

__all__ = ["MAX_SCALE", "generate", "make_mnist1d", "mnist1d_templates"]

MAX_SCALE = 1e100  # the largest scale or noise level make_mnist1d accepts

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


def _as_rng(rng, func):
    """int -> a local legacy RandomState (see make_mnist1d); None -> default_rng(); else as is."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.RandomState(check_int(rng, "rng", func, low=0, high=2**32 - 1))
    raise param_error("rng", func, "None, an int, a numpy Generator or a RandomState",
                      repr(rng), TypeError)


# ---------------------------------------------------------------------------------------------
# MNIST-1D
# ---------------------------------------------------------------------------------------------


def make_mnist1d(n_samples=5000, *, train_fraction=0.8, padding=(36, 60), scale_coeff=0.4,
                 max_translation=48, corr_noise_scale=0.25, iid_noise_scale=0.02,
                 shear_scale=0.75, shuffle_seq=False, length=40, rng=None, dtype=np.float32):
    r"""Generate the MNIST-1D dataset (Greydanus & Kobak 2024, §2 and Fig. 1).

    .. math::

        x = \operatorname{resample}_{40}\Big(\operatorname{shear}\big(
            \operatorname{noise}(\operatorname{roll}_k(s\cdot
            \operatorname{resample}_{72}[\,t_c + \epsilon \,\|\, 0_p\,]))\big)\Big),
        \qquad X \leftarrow (X - \bar X) / \operatorname{std}(X)

    The recipe, for ``n_samples // 10`` examples of each digit ``c`` (digit-major order):

    1. take the template :math:`t_c` (12 points, :func:`mnist1d_templates`) plus
       :math:`\epsilon = 10^{-8}`;
    2. pad: append :math:`p = p_{lo} + \lfloor u (p_{hi} - p_{lo} + 1) \rfloor` zeros,
       :math:`u \sim U[0, 1)`;
    3. dilate: resample linearly to :math:`L = 12 + p_{hi}` points (72), so the digit fills a
       random share of the signal;
    4. scale by :math:`s = 1 + \text{scale\_coeff}\,(u - 1/2)`;
    5. translate: roll right by :math:`k \in \{0, \dots, \text{max\_translation} - 1\}`;
    6. correlated noise: every point still exactly 0 (the padding) becomes Gaussian noise of
       std ``corr_noise_scale`` smoothed by a Gaussian filter of :math:`\sigma = 2` samples;
    7. iid noise: add Gaussian noise of std ``iid_noise_scale`` to every point;
    8. shear: subtract :math:`\text{shear\_scale}\,(u - 1/2)\,\ell` with :math:`\ell` evenly
       spaced on [-1/2, 1/2];
    9. resample linearly to ``length`` points (40).

    Then the examples are shuffled, optionally the time axis too (``shuffle_seq``), the whole set
    is standardised by its global mean and std, and the first ``int(N * train_fraction)`` examples
    are the training split. There is no gradient: this is data.

    Parameters
    ----------
    n_samples : int, default 5000
        Total examples N before the split (10 * (N // 10) are made).
    train_fraction : float, default 0.8
        Share that goes to the training split (the package's ``train_split``).
    padding : (int, int), default (36, 60)
        Range of the number of zeros appended in step 2.
    scale_coeff, max_translation, corr_noise_scale, iid_noise_scale, shear_scale : default
        0.4, 48, 0.25, 0.02, 0.75 — the package's defaults for steps 4 to 8. The scales are
        at most :data:`MAX_SCALE` (1e100): far larger ones overflow the standardisation.
    shuffle_seq : bool, default False
        Apply one fixed random permutation to the time axis of every signal.
    length : int, default 40
        Points per signal (the package's ``final_seq_length``).
    rng : None, int, numpy Generator or RandomState
        An int seeds a local legacy ``np.random.RandomState``: that is the stream the mnist1d
        package draws from numpy's *global* state, so ``rng=s`` reproduces
        ``mnist1d.data.make_dataset()`` with ``seed=s`` (``rng=42`` gives the package's default
        dataset). numpy's global random state is never read or changed.
    dtype : float32 or float64, default float32
        dtype of the features; all steps are computed in float64.

    Raises
    ------
    ValueError
        For an argument out of range, or sizes whose arrays would not fit in memory (checked
        before anything is allocated).

    Returns
    -------
    Split
        ``X_train`` of shape (N_train, length), ``y_train`` of shape (N_train,) int64,
        ``X_test`` of shape (N_test, length), ``y_test`` of shape (N_test,) int64.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = make_mnist1d(rng=42)
    >>> X_train.shape, X_test.shape, X_train.dtype
    ((4000, 40), (1000, 40), dtype('float32'))
    >>> np.bincount(y_test)
    array([102, 104,  89, 106, 106,  98,  99,  96,  98, 102])
    """
    func = "make_mnist1d"
    n_samples = check_int(n_samples, "n_samples", func, low=10)
    train_fraction = check_fraction(train_fraction, "train_fraction", func, closed_low=False)
    if (not isinstance(padding, (tuple, list)) or len(padding) != 2
            or not all(isinstance(p, numbers.Integral) and not isinstance(p, (bool, np.bool_))
                       and 0 <= p for p in padding) or padding[0] > padding[1]):
        raise param_error("padding", func, "a pair of ints (low, high) with 0 <= low <= high",
                          repr(padding))
    p_lo, p_hi = int(padding[0]), int(padding[1])
    n_points = 12 + p_hi  # L = 72 by default: the signal length after dilation
    # above MAX_SCALE the squares in the final standardisation overflow (an all-zero data set)
    scale_coeff = check_nonnegative(scale_coeff, "scale_coeff", func, high=MAX_SCALE)
    max_translation = check_int(max_translation, "max_translation", func, low=1,
                                high=n_points)
    corr_noise_scale = check_nonnegative(corr_noise_scale, "corr_noise_scale", func,
                                         high=MAX_SCALE)
    iid_noise_scale = check_nonnegative(iid_noise_scale, "iid_noise_scale", func,
                                        high=MAX_SCALE)
    shear_scale = check_nonnegative(shear_scale, "shear_scale", func, high=MAX_SCALE)
    shuffle_seq = check_bool(shuffle_seq, "shuffle_seq", func)
    length = check_int(length, "length", func, low=2)
    try:
        known = np.dtype(dtype) in (np.float32, np.float64)
    except TypeError:  # not a dtype at all ('foo'): numpy's own message would escape
        known = False
    if not known:
        raise param_error("dtype", func, "float32 or float64", repr(dtype)[:60], TypeError)
    per_class = n_samples // 10
    _check_mnist1d_memory(10 * per_class, n_points, p_hi - p_lo + 1, length, func)
    n_train = int(10 * per_class * train_fraction)
    if not 0 < n_train < 10 * per_class:
        raise ValueError(f"The 'train_fraction' parameter of {func} must leave both splits "
                         f"non-empty. Got {train_fraction} of {10 * per_class} examples instead.")

    x, y = generate(
        _as_rng(rng, func), per_class=per_class, padding=(p_lo, p_hi), scale_coeff=scale_coeff,
        max_translation=max_translation, corr_noise_scale=corr_noise_scale,
        iid_noise_scale=iid_noise_scale, shear_scale=shear_scale, shuffle_seq=shuffle_seq,
        length=length)  # (N, length), (N,)
    x = x.astype(dtype, copy=False)
    return Split(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _check_mnist1d_memory(n, n_points, n_paddings, length, func):
    """Refuse sizes whose arrays would not fit: about seven float64 (N, L) work arrays, the
    (10, n_paddings, L) template table and three (N, length) results; the parameter named is
    the one that makes it too large even for ten examples, else n_samples."""
    def need(n):
        return 8 * (7 * n * n_points + 10 * n_paddings * n_points + 3 * n * length)

    what = "arrays fit"
    check_memory(8 * (7 * 10 * n_points + 10 * n_paddings * n_points), "padding", func, what)
    check_memory(need(10), "length", func, what)
    check_memory(need(n), "n_samples", func, what)
