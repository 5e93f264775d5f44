r"""Your own data set and your own teacher's logits, from files (``minikd distill --data``).

Formats (``docs/bring_your_own.md``):

* data, ``.npz``: ``X`` (N, D) numbers and ``y`` (N,) integer labels 0..C-1; optionally
  ``X_test`` (M, D) and ``y_test`` (M,), else a stratified split with a seed
  (:func:`minikd.experiments.data.train_val_split`, ``test_fraction`` of each class to test).
* data, ``.csv``: a header row, then one row per example, numeric cells only; the label column
  is ``label_column`` (a header name or a 0-based index), by default the column named ``label``
  or ``y``, else the last one. Always split by minikd as above.
* teacher logits, ``.npy``: one row of C logits per row of the data file, in the file's order:
  (N, C) for the training rows ``X``, or (N + M, C) for ``X`` followed by ``X_test``. For a data
  file that minikd splits, (N, C) for all its rows: they are split with the data.
* teacher logits, ``.npz``: ``train`` (N, C) and optionally ``test`` (M, C), same rows.

Every file is read with ``allow_pickle=False``, its array headers checked (dtype, shape, size
on disk) before any data (:mod:`minikd._npyfiles`); every problem is a ValueError naming the
file and what was expected. Features are standardised with the training rows' statistics and
returned as float32, like :func:`minikd.experiments.data.load_dataset`.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from .._npyfiles import describe_head, is_npz, npz_headers, read_member, read_npy
from .._validation import memory_limit, param_error
from .csvtable import read_csv_table
from .data import standardize, train_val_split
from .split import Split

__all__ = ["load_teacher_logits", "load_user_data", "load_user_files"]

DATA_KEYS = ("X", "y", "X_test", "y_test")
LOGIT_KEYS = ("train", "test")


def _bad(path, what):
    def bad(problem):
        return ValueError(f"Cannot read {what} from '{os.fspath(path)}': {problem}.")
    return bad


def _open(path, bad, func):
    """The open binary file ``path``; a missing file or a folder becomes ``bad``."""
    if not isinstance(path, (str, os.PathLike)):
        raise param_error("path", func, "a str or os.PathLike", repr(path), TypeError)
    try:
        return open(path, "rb")
    except FileNotFoundError as err:
        raise bad("no such file") from err
    except IsADirectoryError as err:
        raise bad("it is a folder, not a file") from err


def _read_npz(fh, keys, required, bad):
    """``{key: array}`` of the ``.npz`` in ``fh``: only ``keys``, ``required`` present, and no
    array larger than the machine's memory (checked on the headers, before any data)."""
    if not is_npz(fh):
        raise bad(f"not an .npz archive ({describe_head(fh.read(64))}); expected one with "
                  f"arrays {list(keys)}, or a CSV file named *.csv")
    try:
        with zipfile.ZipFile(fh) as archive:
            heads = npz_headers(archive, bad, lambda k: k in keys, f"arrays among {list(keys)}")
            missing = [k for k in required if k not in heads]
            if missing:
                raise bad(f"missing array(s) {missing} (it holds {sorted(heads)})")
            for key, (_, shape, dtype) in heads.items():
                if math.prod(shape) * dtype.itemsize > memory_limit():
                    raise bad(f"array '{key}' declares shape {shape}: more than this machine's "
                              "memory")
            return {k: read_member(archive, info, k, bad) for k, (info, _, _) in heads.items()}
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as err:
        raise bad(f"truncated or corrupt ({type(err).__name__}: {err})") from err


def _labels(y, key, bad):
    """``y`` (N,) as int64 labels >= 0, else ``bad`` naming the first offending row."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise bad(f"'{key}' must be 1-D (one label per row), got shape {y.shape}")
    if y.dtype.kind not in "fiu":
        raise bad(f"'{key}' must hold integer class labels, got dtype {y.dtype}")
    bad_rows = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y != np.round(y))) \
        if y.dtype.kind == "f" else np.flatnonzero(y < 0)
    if bad_rows.size:
        r = int(bad_rows[0])
        raise bad(f"'{key}' holds {bad_rows.size} label(s) outside the classes 0, 1, 2, ... "
                  f"(labels are integers >= 0); the first is {y[r].item()!r} at row {r}")
    return y.astype(np.int64)


def _features(X, key, bad):
    X = np.asarray(X)
    if X.ndim != 2:
        raise bad(f"'{key}' must be 2-D (rows x features), got shape {X.shape}")
    if X.dtype.kind not in "fiu" or X.size == 0:
        raise bad(f"'{key}' must be a non-empty array of numbers, got {X.dtype} {X.shape}")
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise bad(f"'{key}' holds NaN or inf (first at row {r}, column {c})")
    return X


def _read_data(path, label_column):
    """The data file's arrays, checked: ``{"X", "y"}`` and maybe ``{"X_test", "y_test"}``."""
    bad = _bad(path, "a data set")
    with _open(path, bad, "load_user_data") as fh:
        if str(path).lower().endswith(".csv"):
            raw = read_csv_table(fh, label_column, bad)
        else:
            if label_column is not None:
                raise bad("a label column is only for .csv files; an .npz holds 'y'")
            raw = _read_npz(fh, DATA_KEYS, ("X", "y"), bad)
    if ("X_test" in raw) != ("y_test" in raw):
        raise bad("'X_test' and 'y_test' come together (found only one)")
    data = {}
    for part in ("", "_test"):
        if "X" + part not in raw:
            continue
        X, y = _features(raw["X" + part], "X" + part, bad), _labels(raw["y" + part],
                                                                    "y" + part, bad)
        if y.shape[0] != X.shape[0]:
            raise bad(f"'X{part}' has {X.shape[0]} rows but 'y{part}' {y.shape[0]} labels")
        data["X" + part], data["y" + part] = X, y
    if "X_test" in data:
        if data["X_test"].shape[1] != data["X"].shape[1]:
            raise bad(f"'X_test' has {data['X_test'].shape[1]} features, 'X' "
                      f"{data['X'].shape[1]}")
        n_classes = int(data["y"].max()) + 1
        if data["y_test"].max() >= n_classes:
            r = int(np.argmax(data["y_test"] >= n_classes))
            raise bad(f"'y_test' holds label {data['y_test'][r]} at row {r}, outside the "
                      f"training labels' classes 0..{n_classes - 1}")
    return data


def _split_rows(y, test_fraction, rng, bad):
    """Row indices (train, test) of minikd's stratified split of a data file without a test."""
    rows = np.arange(y.size, dtype=np.float64)[:, None]  # (N, 1): the split of the row numbers
    try:
        train, _, test, _ = train_val_split(rows, y, val_fraction=test_fraction, rng=rng)
    except ValueError as err:  # too few rows for a test split of that fraction
        raise bad(f"no X_test, and minikd cannot split it: {err}".rstrip(".")) from err
    return train[:, 0].astype(np.int64), test[:, 0].astype(np.int64)


def _split(data, test_fraction, rng, bad):
    """``(Split, (train_rows, test_rows) or None)``: the data's own test, or minikd's split."""
    if "X_test" in data:
        X_tr, y_tr, X_te, y_te = data["X"], data["y"], data["X_test"], data["y_test"]
        rows = None
    else:
        rows = _split_rows(data["y"], test_fraction, rng, bad)
        X_tr, y_tr = data["X"][rows[0]], data["y"][rows[0]]
        X_te, y_te = data["X"][rows[1]], data["y"][rows[1]]
    X_tr, X_te = standardize(X_tr.astype(np.float64), X_te.astype(np.float64))
    return Split(X_tr.astype(np.float32), y_tr, X_te.astype(np.float32), y_te), rows


def load_user_data(path, *, label_column=None, test_fraction=0.2, rng=0):
    """A data set from an ``.npz`` or ``.csv`` file, as train and test arrays.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` with ``X`` (N, D), ``y`` (N,) and optionally ``X_test`` (M, D), ``y_test``
        (M,); or ``.csv`` with a header row and numeric cells (see the module's docstring).
    label_column : str or int, optional
        CSV only: the label column's header name or 0-based index; default the column named
        ``label`` or ``y``, else the last.
    test_fraction : float in (0, 1), default 0.2
        Share of each class held out as the test split when the file has no ``X_test``.
    rng : int, numpy.random.Generator or None, default 0
        Seeds that split.

    Returns
    -------
    minikd.Split
        ``X_train`` (N', D) float32, ``y_train`` (N',) int64, ``X_test`` (M', D), ``y_test``
        (M',), features standardised with the training rows' mean and std.

    Raises
    ------
    ValueError
        Naming the file: missing arrays, wrong ndim, non-numeric CSV cells (row and column),
        NaN/inf features, labels that are not integers >= 0, test labels outside the training
        labels' classes, row counts that differ.
    """
    return _split(_read_data(path, label_column), test_fraction, rng,
                  _bad(path, "a data set"))[0]


def load_teacher_logits(path, n_train, n_test, n_classes):
    r"""A teacher's logits from an ``.npy`` or ``.npz`` file, checked against the data.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy`` of shape (n_train, C) or (n_train + n_test, C): the training rows, then the
        test rows; or ``.npz`` with ``train`` (n_train, C) and optionally ``test`` (n_test, C).
    n_train, n_test : int
        Rows of the training and test data (``n_test = 0``: no test rows expected).
    n_classes : int
        C, the classes of the labels: the logits need exactly C columns.

    Returns
    -------
    train : ndarray of shape (n_train, C), float64
    test : ndarray of shape (n_test, C) or None
        None when the file holds only training rows.

    Raises
    ------
    ValueError
        Naming the file: not an .npy/.npz, missing ``train``, wrong ndim, a row count that is
        neither layout, a class count other than C, NaN or inf.
    """
    return _read_logits(path, n_train, n_test, n_classes, "the training rows")


def _read_logits(path, n_train, n_test, n_classes, train_rows):
    """:func:`load_teacher_logits`; ``train_rows`` says what the first n_train rows are."""
    bad = _bad(path, "teacher logits")
    layouts = f"{n_train} ({train_rows})" + (
        f" or {n_train + n_test} (training rows, then test rows)" if n_test else "")

    def check(key, shape, dtype, rows):
        if len(shape) != 2:
            raise bad(f"'{key}' must be 2-D (rows x classes), got shape {shape}")
        if dtype.kind not in "fiu":
            raise bad(f"'{key}' must hold numbers, got dtype {dtype}")
        if shape[0] not in rows:
            raise bad(f"'{key}' has {shape[0]} rows; the data needs {layouts}")
        if shape[1] != n_classes:
            raise bad(f"'{key}' has {shape[1]} columns (classes) but the labels have "
                      f"{n_classes} classes (0..{n_classes - 1})")
        if shape[0] * shape[1] * 8 > memory_limit():
            raise bad(f"'{key}' declares shape {shape}: more than this machine's memory")

    with _open(path, bad, "load_teacher_logits") as fh:
        if is_npz(fh):
            arrays = _read_npz(fh, LOGIT_KEYS, ("train",), bad)
            for key, rows in (("train", (n_train,)), ("test", (n_test,))):
                if key in arrays:
                    check(key, arrays[key].shape, arrays[key].dtype, rows)
            train, test = arrays["train"], arrays.get("test")
        else:
            if fh.read(6) != b"\x93NUMPY":
                fh.seek(0)
                raise bad(f"not an .npy or .npz file ({describe_head(fh.read(64))})")
            rows = (n_train, n_train + n_test) if n_test else (n_train,)
            z = read_npy(fh, "logits", bad, lambda s, d: check("logits", s, d, rows))
            train, test = (z, None) if z.shape[0] == n_train else (z[:n_train], z[n_train:])
    for key, z in (("train", train), ("test", test)):
        if z is not None and not np.isfinite(z).all():
            r, c = np.argwhere(~np.isfinite(z))[0]
            raise bad(f"the {key} logits hold NaN or inf (first at row {r}, column {c}); "
                      "expected finite logits")
    return train.astype(np.float64), None if test is None else test.astype(np.float64)


def load_user_files(data, teacher_logits=None, *, label_column=None, test_fraction=0.2, rng=0):
    """A data file and, optionally, its teacher-logits file, with matching rows.

    When minikd splits the data (no ``X_test``, or a CSV), the logits file has one row per row
    of the data file and is split with the same rows; otherwise it follows
    :func:`load_teacher_logits`. Parameters as in :func:`load_user_data`.

    Returns
    -------
    split : minikd.Split
    logits : tuple (train (N', C), test (M', C) or None), or None without ``teacher_logits``
    """
    arrays = _read_data(data, label_column)
    split, rows = _split(arrays, test_fraction, rng, _bad(data, "a data set"))
    if teacher_logits is None:
        return split, None
    n_classes = int(max(split.y_train.max(), split.y_test.max())) + 1
    if rows is None:
        return split, load_teacher_logits(teacher_logits, split.y_train.size,
                                           split.y_test.size, n_classes)
    z, _ = _read_logits(teacher_logits, arrays["y"].size, 0, n_classes,
                        "one per row of the data file, which minikd splits")
    return split, (z[rows[0]], z[rows[1]])
