r"""The softmax of one logit vector at several temperatures (``minikd temperature``)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_temperature, param_error
from ..losses.softmax import softmax

__all__ = ["temperature_table"]


def temperature_table(logits, temperatures=(1.0, 2.0, 4.0, 20.0)):
    r"""The softmax of one logit vector at several temperatures, one row per temperature.

    .. math::

        P_{k,i} = \frac{\exp(z_i / T_k)}{\sum_j \exp(z_j / T_k)}

    Parameters
    ----------
    logits : array_like of shape (C,)
        One logit vector.
    temperatures : sequence of float, length K
        Each T > 0.

    Returns
    -------
    ndarray of shape (K, C)
        Row k is ``softmax(logits, temperature=temperatures[k])``.

    Examples
    --------
    >>> np.round(temperature_table([2.0, 1.0, 0.0], [1.0, 4.0]), 3)
    array([[0.665, 0.245, 0.09 ],
           [0.419, 0.326, 0.254]])
    """
    z = as_float_array(logits, "logits", "temperature_table", ndim=1)
    ts = list(temperatures) if np.ndim(temperatures) else [temperatures]
    if not ts:
        raise param_error("temperatures", "temperature_table", "a non-empty list of floats",
                          "an empty list")
    ts = [check_temperature(t, "temperature_table", "temperatures") for t in ts]
    return np.stack([softmax(z, temperature=t) for t in ts])  # (K, C)
