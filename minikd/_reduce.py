r"""``LossGrad`` and the reduction of per-position losses over a batch, with an optional mask.

Every response-based loss computes a value per position (a row of logits, shape ``(...,)``)
and its gradient with respect to that row (shape ``(..., C)``), then reduces here:

* ``"batchmean"`` (the default; PyTorch's word): sum over classes, mean over the *selected*
  positions, :math:`L = \frac{1}{M} \sum_{m \in \text{mask}} \ell_m`, where M is the number of
  selected positions (N for a plain (N, C) batch).
* ``"sum"``: :math:`L = \sum_{m \in \text{mask}} \ell_m`.
* ``"mean"``: PyTorch's ``nn.KLDivLoss()`` default, divided by the number of selected
  *elements*, :math:`L = \frac{1}{M C} \sum_m \ell_m`.

The gradient of each is the per-position gradient times the same factor, and zero on masked
positions. A fully masked batch has M = 0: minikd defines the loss as 0.0 and the gradient as
zeros (there is nothing to learn from), instead of PyTorch's 0/0 = NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validation import param_error

__all__ = ["REDUCTIONS", "LossGrad", "reduce_positions", "resolve_mask"]

REDUCTIONS = ("batchmean", "sum", "mean")


class LossGrad(NamedTuple):
    """A loss value and its gradient with respect to the student's input.

    Unpacks like a tuple: ``loss, grad = kd_loss(z_s, z_t)``.

    Attributes
    ----------
    loss : float
        The scalar loss.
    grad : ndarray
        dloss / d(student input), shaped like the student input.
    """

    loss: float
    grad: np.ndarray


def resolve_mask(mask, lead_shape, func, *, labels=None, ignore_index=-100):
    """Turn ``mask`` (bool, over the leading axes) or ``labels == ignore_index`` into a bool mask.

    Returns None when every position is selected (no mask and no ignored label), so callers can
    skip the masking work on the common 2-D path.
    """
    selected = None
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise param_error("mask", func, "a boolean array over the leading axes",
                              f"dtype {m.dtype}", TypeError)
        if m.shape != tuple(lead_shape):
            raise param_error("mask", func, f"a boolean array of shape {tuple(lead_shape)}",
                              f"shape {m.shape}")
        selected = m
    if labels is not None and ignore_index is not None:
        keep = labels != ignore_index
        if not keep.all():
            selected = keep if selected is None else (selected & keep)
    return selected


def reduce_positions(per_position, grad, mask, reduction, func, *, loss_scale=1.0,
                     grad_scale=1.0):
    """Reduce per-position losses and scale their gradients to match.

    Parameters
    ----------
    per_position : ndarray of shape (...,)
        Loss of each position (each row of logits).
    grad : ndarray of shape (..., C)
        Gradient of each position's loss with respect to its row; modified in place.
    mask : ndarray of bool of shape (...,) or None
        Positions to keep; None keeps all.
    reduction : {"batchmean", "sum", "mean"}
    func : str
        Caller's name for error messages.
    loss_scale, grad_scale : float, default 1.0
        Constant factors for the reduced loss and the gradient (e.g. T² and T for ``kd_loss``),
        folded into the reduction's own factor so the gradient is scaled in a single pass.

    Returns
    -------
    LossGrad
    """
    if reduction not in REDUCTIONS:
        raise param_error("reduction", func, f"one of {REDUCTIONS}", repr(reduction))
    if mask is None:
        count = per_position.size
        total = per_position.sum(dtype=np.float64)
    else:
        count = int(mask.sum())
        total = per_position.sum(where=mask, dtype=np.float64)
        grad *= mask[..., None]
    if reduction == "sum":
        factor = 1.0
    elif count == 0:
        factor = 0.0
    elif reduction == "batchmean":
        factor = 1.0 / count
    else:
        factor = 1.0 / (count * grad.shape[-1])
    if factor * grad_scale != 1.0:
        grad *= grad.dtype.type(factor * grad_scale)
    return LossGrad(float(total * (factor * loss_scale)), grad)
