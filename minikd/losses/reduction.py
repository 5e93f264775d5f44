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

__all__ = ["REDUCTIONS", "LossGrad", "reduce_positions", "reduction_factor"]

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


def reduction_factor(reduction, count, shape, n_classes):
    """The factor that turns the sum over selected positions into the reduced loss.

    ``count`` is the number of selected positions M, ``shape`` the positions' shape (the logits'
    without the class axis), ``n_classes`` the C of ``"mean"``. A fully masked batch (M = 0)
    gives 0.0 for every reduction but ``"sum"``, so the loss is 0 and the gradient zeros, never
    0/0.
    """
    if reduction == "sum":
        return 1.0
    if count == 0:
        return 0.0
    if reduction == "batchmean":
        return 1.0 / count
    if reduction == "sequence_mean":
        return 1.0 / (shape[0] if len(shape) else 1)
    return 1.0 / (count * n_classes)  # "mean"


def reduce_positions(per_position, grad, mask=None, reduction="batchmean"):
    r"""Reduce per-position losses :math:`\ell_m` and scale their gradients to match.

    :math:`L = f \sum_{m \in \text{mask}} \ell_m` and
    :math:`\partial L / \partial z_m = f\, \partial \ell_m / \partial z_m` on selected
    positions, 0 elsewhere, with f the :func:`reduction_factor`.

    Parameters
    ----------
    per_position : ndarray of shape (...,)
        Loss of each position (each row of logits).
    grad : ndarray of shape (..., C)
        Gradient of each position's loss with respect to its row.
    mask : ndarray of bool of shape (...,) or None
        Positions to keep; None keeps all.
    reduction : {"batchmean", "sum", "mean", "sequence_mean"}

    Returns
    -------
    LossGrad
        The reduced loss and a new gradient array; the inputs are not modified.
    """
    if mask is not None:
        per_position = np.where(mask, per_position, 0.0)  # (...,)
        grad = grad * mask[..., None]  # (..., C)
    count = per_position.size if mask is None else int(mask.sum())
    factor = reduction_factor(reduction, count, per_position.shape, grad.shape[-1])
    loss = factor * float(per_position.sum(dtype=np.float64))
    return LossGrad(loss, grad * grad.dtype.type(factor))
