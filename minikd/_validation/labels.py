"""Class labels and position masks: integer labels in range (or ignore_index), boolean masks of
the positions' shape."""

from __future__ import annotations

import numbers

import numpy as np

from .messages import describe, param_error

__all__ = ["as_labels", "check_labels", "check_mask"]


def as_labels(labels, shape, n_classes, func, *, name="labels", ignore_index=None):
    """Convert class labels to an int64 array of the given shape, each in [0, n_classes).

    Parameters
    ----------
    labels : array_like of int
        Class indices; float arrays holding whole numbers are refused (a float label usually
        means a probability was passed where an index was meant).
    shape : tuple of int
        Required shape: the logits' shape without the class axis.
    n_classes : int
        Number of classes C.
    ignore_index : int, optional
        A label value that marks a position to skip (Hugging Face uses -100); allowed besides
        the class range.

    Returns
    -------
    ndarray of int64 and shape ``shape``
    """
    try:
        arr = np.asarray(labels)
    except (ValueError, TypeError) as err:
        raise param_error(name, func, "an integer array", describe(labels), TypeError) from err
    if arr.dtype.kind not in "iu":
        raise param_error(name, func, f"an integer array of class indices of shape {shape}",
                          f"dtype {arr.dtype}", TypeError)
    if arr.shape != tuple(shape):
        raise param_error(name, func, f"an integer array of shape {tuple(shape)} (one label per "
                          "row of logits)", f"shape {arr.shape}")
    # checked in the labels' own dtype: a cast to int64 first would wrap a uint64 label of
    # 2**64 - 100 to -100, the ignore_index
    valid = (arr >= 0) & (arr < n_classes)  # (...,)
    if ignore_index is not None:
        valid |= arr == ignore_index
    if not valid.all():
        bad = arr[~valid][0]
        allowed = f"in [0, {n_classes})"
        if ignore_index is not None:
            allowed += f" or equal to ignore_index={ignore_index}"
        raise param_error(name, func, f"class indices {allowed}", f"label {int(bad)}")
    return arr.astype(np.int64, copy=False)


def check_mask(mask, shape, func):
    """``mask`` as a bool array of the positions' shape, or None (every position selected)."""
    if mask is None:
        return None
    try:
        m = np.asarray(mask)
    except (ValueError, TypeError) as err:  # a ragged nested list
        raise param_error("mask", func, f"a boolean array of shape {tuple(shape)}",
                          describe(mask), TypeError) from err
    if m.dtype != np.bool_:
        raise param_error("mask", func, "a boolean array over the leading axes",
                          f"dtype {m.dtype}", TypeError)
    if m.shape != tuple(shape):
        raise param_error("mask", func, f"a boolean array of shape {tuple(shape)}",
                          f"shape {m.shape}")
    return m


def check_labels(labels, shape, n_classes, func, *, ignore_index=-100, mask=None):
    """Labels and mask of a label-taking loss, checked together.

    Returns ``(y, selected)``: int64 labels of ``shape`` safe to index with (a position whose
    label is ``ignore_index`` gets class 0), and the bool mask of the positions that count
    (``mask`` without the ignored positions; None when every position counts).
    """
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, numbers.Integral)):
        raise param_error("ignore_index", func, "an int or None", describe(ignore_index),
                          TypeError)
    y = as_labels(labels, shape, n_classes, func, ignore_index=ignore_index)
    selected = check_mask(mask, shape, func)
    if ignore_index is not None:
        ignored = y == ignore_index  # (...,)
        if ignored.any():
            y = np.where(ignored, 0, y)
            selected = ~ignored if selected is None else selected & ~ignored
    return y, selected
