"""``Split``: the train/test pair every data loader of :mod:`minikd.data` returns."""

from typing import NamedTuple

import numpy as np

__all__ = ["Split"]


class Split(NamedTuple):
    """A train/test pair; unpacks as ``X_train, y_train, X_test, y_test``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
