r"""``LossGrad`` and the reduction of per-position losses over a batch, with an optional mask.

Every response-based loss computes a value per position (a row of logits, shape ``(...,)``)
and its gradient with respect to that row (shape ``(..., C)``), then reduces here:

* ``"batchmean"`` (the default; PyTorch's word): sum over classes, mean over the *selected*
  positions, :math:`L = \frac{1}{M} \sum_{m \in \text{mask}} \ell_m`, where M is the number of
  selected positions (N for a plain (N, C) batch).
* ``"sum"``: :math:`L = \sum_{m \in \text{mask}} \ell_m`.
* ``"mean"``: PyTorch's ``nn.KLDivLoss()`` default, divided by the number of selected
  *elements*, :math:`L = \frac{1}{M C} \sum_m \ell_m`.
* ``"sequence_mean"``: divided by the size N of the *first* axis, masked or not,
  :math:`L = \frac{1}{N} \sum_{m \in \text{mask}} \ell_m`. This is what PyTorch's
  ``reduction="batchmean"`` computes on an (N, L, V) tensor (``input.size(0)``), and what TRL's
  ``GKDTrainer.generalized_jsd_loss`` divides by without labels since PR #4105; on an (N, C)
  batch without a mask it equals ``"batchmean"``.

The gradient of each is the per-position gradient times the same factor, and zero on masked
positions. A fully masked batch has M = 0: minikd defines the loss as 0.0 and the gradient as
zeros (there is nothing to learn from), instead of PyTorch's 0/0 = NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_choice, param_error

__all__ = ["REDUCTIONS", "LossGrad", "reduce_positions", "reduction_factor", "resolve_mask"]

REDUCTIONS = ("batchmean", "sum", "mean", "sequence_mean")


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


def reduction_factor(reduction, count, lead_shape, n_classes, func):
    """The factor that turns the sum over selected positions into the reduced loss.

    ``count`` is the number of selected positions M, ``lead_shape`` the shape of the leading
    axes, ``n_classes`` the C of ``"mean"``. A fully masked batch (M = 0) gives 0.0 for every
    reduction but ``"sum"``, so the loss is 0 and the gradient zeros, never 0/0.
    """
    check_choice(reduction, "reduction", func, REDUCTIONS)
    if reduction == "sum":
        return 1.0
    if count == 0:
        return 0.0
    if reduction == "batchmean":
        return 1.0 / count
    if reduction == "sequence_mean":
        return 1.0 / (lead_shape[0] if len(lead_shape) else 1)
    return 1.0 / (count * n_classes)


def reduce_positions(per_position, grad, mask, reduction, func, *, loss_scale=1.0,
                     grad_scale=1.0, n_classes=None):
    """Reduce per-position losses and scale their gradients to match.

    Parameters
    ----------
    per_position : ndarray of shape (...,)
        Loss of each position (each row of logits).
    grad : ndarray of shape (..., C)
        Gradient of each position's loss with respect to its row; modified in place.
    mask : ndarray of bool of shape (...,) or None
        Positions to keep; None keeps all.
    reduction : {"batchmean", "sum", "mean", "sequence_mean"}
    func : str
        Caller's name for error messages.
    loss_scale, grad_scale : float, default 1.0
        Constant factors for the reduced loss and the gradient (e.g. T² and T for ``kd_loss``),
        folded into the reduction's own factor so the gradient is scaled in a single pass.
    n_classes : int, optional
        The C that ``"mean"`` divides by; defaults to ``grad.shape[-1]``.

    Returns
    -------
    LossGrad
    """
    if mask is None:
        count = per_position.size
        total = np.add.reduce(per_position, axis=None, dtype=np.float64)
    else:
        count = int(mask.sum())
        total = per_position.sum(where=mask, dtype=np.float64)
        grad *= mask[..., None]
    factor = reduction_factor(reduction, count, per_position.shape,
                              grad.shape[-1] if n_classes is None else n_classes, func)
    if factor * grad_scale != 1.0:
        grad *= grad.dtype.type(factor * grad_scale)
    return LossGrad(float(total * (factor * loss_scale)), grad)
