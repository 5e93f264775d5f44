r"""Datasets for the experiments, all local: nothing is downloaded at run time.

* :func:`make_mnist1d` — minikd's own generator of MNIST-1D (Greydanus & Kobak, "Scaling down
  deep learning with MNIST-1D", ICML 2024, arXiv:2011.14439): 40-sample 1-D digit signals made from
  ten hand-drawn 12-point templates by a fixed sequence of random transforms. Needs only
  numpy and scipy. The default experiment of ``minikd distill`` runs on it.
* :func:`load_digits` — the UCI 8x8 handwritten digits (1797 x 64), shipped inside the package.
* :func:`load_idx`, :func:`load_mnist` — the IDX files of MNIST / Fashion-MNIST (gzipped or not)
  from a folder you name (the code is in ``minikd/_idx.py``).
* Transfer-set tools: :func:`omit_classes` (Hinton et al. 2015, §3: a transfer set that never
  shows one class), :func:`train_val_split` (stratified), :func:`standardize` (fit on the first
  array, apply to all). A transfer set is used *unlabeled* simply by passing only its ``X`` to the
  distillation trainer: the soft targets come from the teacher.

Features are float32; labels are int64.

Credits and licenses
--------------------
MNIST-1D: the ten templates and the transform recipe are those of Greydanus & Kobak and of their
reference package ``mnist1d`` (github.com/greydanus/mnist1d, Apache License 2.0). The code below
is written anew from that recipe; the template values are the package's published data. With
``rng=s`` (an int) it reproduces ``mnist1d.data.make_dataset()`` with ``seed=s`` and the same
arguments (the test ``tests/test_data.py`` checks this where ``mnist1d`` is installed).

Digits: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI
Machine Learning Repository, doi:10.24432/C50P49, licensed CC BY 4.0. The shipped file
``minikd/experiments/datafiles/digits.csv.gz`` is byte-for-byte the copy that scikit-learn
distributes (its 1797 rows are the UCI test split), see ``minikd/experiments/datafiles/README.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validation import (
    as_float_array,
    check_fraction,
    param_error,
)
from .idx import load_idx, load_mnist
from .mnist1d import make_mnist1d, mnist1d_templates
from .split import Split

__all__ = [
    "DATASETS",
    "Split",
    "load_dataset",
    "load_digits",
    "load_idx",
    "load_mnist",
    "make_mnist1d",
    "mnist1d_templates",
    "omit_classes",
    "standardize",
    "train_val_split",
]

_DATAFILES = Path(__file__).resolve().parent / "datafiles"


def _check_labels(y, n, func, name="y"):
    """Integer labels of shape (n,), any integer values (not tied to a class count)."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise param_error(name, func, "an integer array of class labels", f"dtype {arr.dtype}",
                          TypeError)
    if arr.shape != (n,):
        raise param_error(name, func, f"an integer array of shape ({n},) (one label per row of X)",
                          f"shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------
# UCI 8x8 digits (shipped)
# ---------------------------------------------------------------------------------------------

def load_digits():
    r"""The UCI 8x8 handwritten digits (Alpaydin & Kaynak 1998; CC BY 4.0), shipped with minikd.

    1797 images of 8x8 blocks, each pixel the count of set pixels (0..16) in a 4x4 block of a
    32x32 bitmap, divided here by 16.

    Returns
    -------
    X : ndarray of shape (1797, 64), float32
        Pixels in [0, 1], row-major 8x8.
    y : ndarray of shape (1797,), int64
        Digits 0..9.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, float(X.max()), np.bincount(y)[:3]
    ((1797, 64), dtype('float32'), 1.0, array([178, 182, 177]))
    """
    path = _DATAFILES / "digits.csv.gz"
    try:
        raw = np.loadtxt(path, delimiter=",", dtype=np.int64)  # (1797, 65)
    except OSError as err:
        raise FileNotFoundError(f"load_digits: the shipped data file {path} is missing; "
                                "reinstall minikd.") from err
    if raw.shape != (1797, 65) or raw.min() < 0 or raw[:, :64].max() > 16 or raw[:, 64].max() > 9:
        raise ValueError(f"load_digits: {path} is not the expected 1797 x (64 pixels + label) "
                         f"table with pixels in 0..16. Got shape {raw.shape}.")
    return (raw[:, :64] / 16.0).astype(np.float32), raw[:, 64].copy()


# ---------------------------------------------------------------------------------------------
# transfer-set tools
# ---------------------------------------------------------------------------------------------

def omit_classes(X, y, classes):
    r"""Drop every example of one or more classes (Hinton et al. 2015, §3: the omitted digit).

    Parameters
    ----------
    X : array_like of shape (N, D)
        Features.
    y : array_like of int, shape (N,)
        Labels.
    classes : int or sequence of int
        Classes to remove; each must occur in ``y``.

    Returns
    -------
    X_kept : ndarray of shape (N_kept, D)
        The remaining rows, in their original order (float32 stays float32, else float64).
    y_kept : ndarray of shape (N_kept,), int64

    Examples
    --------
    >>> X, y = omit_classes(np.eye(4), [0, 3, 1, 3], 3)
    >>> X.shape, y
    ((2, 4), array([0, 1]))
    """
    func = "omit_classes"
    X = as_float_array(X, "X", func, ndim=2)
    y = _check_labels(y, X.shape[0], func)
    drop = np.atleast_1d(np.asarray(classes))
    if drop.ndim != 1 or drop.size == 0 or drop.dtype.kind not in "iu":
        raise param_error("classes", func, "an int or a non-empty sequence of ints",
                          repr(classes), TypeError)
    missing = np.setdiff1d(drop, y)
    if missing.size:
        raise param_error("classes", func, f"classes that occur in y (present: "
                          f"{np.unique(y).tolist()})", f"class {int(missing[0])}")
    keep = ~np.isin(y, drop)
    if not keep.any():
        raise ValueError(f"omit_classes: removing classes {drop.tolist()} leaves no example.")
    return X[keep], y[keep]


def train_val_split(X, y, *, val_fraction=0.2, rng=None):
    r"""Stratified split: each class gives ``round(val_fraction * n_c)`` examples to validation.

    Parameters
    ----------
    X : array_like of shape (N, D)
    y : array_like of int, shape (N,)
    val_fraction : float in (0, 1), default 0.2
    rng : None, int or numpy Generator
        Chooses which examples of each class go to validation (``np.random.default_rng(rng)``).

    Returns
    -------
    Split
        ``X_train`` (N - V, D), ``y_train`` (N - V,), ``X_test`` (V, D) — the validation part —
        and ``y_test`` (V,); rows keep their original order within each part.

    Examples
    --------
    >>> X_tr, y_tr, X_val, y_val = train_val_split(np.ones((10, 2)), [0] * 5 + [1] * 5,
    ...                                            val_fraction=0.4, rng=0)
    >>> np.bincount(y_tr), np.bincount(y_val)
    (array([3, 3]), array([2, 2]))
    """
    func = "train_val_split"
    X = as_float_array(X, "X", func, ndim=2)
    y = _check_labels(y, X.shape[0], func)
    val_fraction = check_fraction(val_fraction, "val_fraction", func, closed_low=False)
    if isinstance(rng, np.random.RandomState):
        raise param_error("rng", func, "None, an int or a numpy Generator", "a RandomState",
                          TypeError)
    gen = np.random.default_rng(rng)
    order = gen.permutation(y.size)  # random order, then grouped by class (stable)
    order = order[np.argsort(y[order], kind="stable")]
    classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    n_val = np.floor(val_fraction * counts + 0.5).astype(np.int64)  # (K,) per class
    rank = np.arange(y.size) - np.repeat(starts, counts)  # position within its class
    is_val = np.zeros(y.size, dtype=bool)
    is_val[order] = rank < np.repeat(n_val, counts)
    if not is_val.any() or is_val.all():
        raise ValueError(f"train_val_split: val_fraction={val_fraction} leaves an empty split "
                         f"for {y.size} examples.")
    return Split(X[~is_val], y[~is_val], X[is_val], y[is_val])


def standardize(X_fit, *X_apply):
    r"""Standardise features with the mean and std of ``X_fit`` (fit on train, apply to all).

    .. math::

        \tilde x_{nd} = \frac{x_{nd} - \mu_d}{\sigma_d}, \qquad
        \mu_d = \frac1N \sum_n x_{nd}, \quad \sigma_d = \sqrt{\tfrac1N \sum_n (x_{nd} - \mu_d)^2}

    with :math:`\sigma_d` replaced by 1 where it is 0 (a constant feature is only centred).

    Parameters
    ----------
    X_fit : array_like of shape (N, D)
        The array the statistics come from (the training set).
    *X_apply : array_like of shape (M, D)
        Further arrays to transform with the same statistics (validation, test).

    Returns
    -------
    tuple of ndarray
        ``X_fit`` and each of ``X_apply`` transformed, same shapes; float32 stays float32.

    Examples
    --------
    >>> a, b = standardize([[0.0], [2.0]], [[4.0]])
    >>> a.ravel(), b.ravel()
    (array([-1.,  1.]), array([3.]))
    """
    func = "standardize"
    X_fit = as_float_array(X_fit, "X_fit", func, ndim=2)
    others = [as_float_array(x, "X_apply", func, ndim=2) for x in X_apply]
    for x in others:
        if x.shape[1] != X_fit.shape[1]:
            raise param_error("X_apply", func, f"arrays with {X_fit.shape[1]} columns like "
                              "X_fit", f"shape {x.shape}")
    mu = X_fit.mean(axis=0)  # (D,)
    sd = X_fit.std(axis=0)  # (D,)
    sd = np.where(sd > 0, sd, 1).astype(X_fit.dtype)
    return tuple(((x - mu) / sd).astype(x.dtype, copy=False) for x in (X_fit, *others))


DATASETS = ("mnist1d", "digits", "idx")


def load_dataset(name="mnist1d", *, data_dir=None, n_train=None, rng=0):
    """Train and test arrays for an experiment, standardised with the training statistics.

    Parameters
    ----------
    name : {"mnist1d", "digits", "idx"}
        ``"mnist1d"``: :func:`minikd.make_mnist1d` with its fixed default dataset (seed 42,
        4000 train / 1000 test); ``"digits"``: the shipped UCI 8x8 digits, split 70 / 30
        (stratified, seeded by ``rng``); ``"idx"``: MNIST or Fashion-MNIST IDX files in
        ``data_dir`` (their own train/test split).
    data_dir : str, optional
        Folder of the IDX files (``name="idx"`` only).
    n_train : int, optional
        Keep only the first ``n_train`` training rows (a quick IDX run).
    rng : int
        Seeds the digits split.

    Returns
    -------
    minikd.Split
        ``X_train`` (N, D) float32, ``y_train`` (N,), ``X_test`` (M, D), ``y_test`` (M,).
    """
    func = "load_dataset"
    if name not in DATASETS:
        raise param_error("name", func, f"one of {DATASETS}", repr(name))
    if name == "mnist1d":
        split = make_mnist1d(rng=42)
    elif name == "digits":
        X, y = load_digits()
        split = train_val_split(X, y, val_fraction=0.3, rng=rng)
    else:
        if data_dir is None:
            raise param_error("data_dir", func, "the folder of the IDX files for name='idx'",
                              "None")
        X_train, y_train = load_mnist(data_dir, kind="train")
        X_test, y_test = load_mnist(data_dir, kind="test")
        split = Split(X_train, y_train, X_test, y_test)
    X_train, y_train, X_test, y_test = split
    if n_train is not None:
        X_train, y_train = X_train[:n_train], y_train[:n_train]
    X_train, X_test = standardize(X_train, X_test)
    return Split(X_train.astype(np.float32), y_train, X_test.astype(np.float32), y_test)
