r"""Row-wise L2 normalisation exactly as PyTorch's ``F.normalize(x, p=2, dim=-1, eps=1e-12)``.

.. math::

    y = \frac{x}{\max(\|x\|_2, \epsilon)}, \qquad
    \frac{\partial L}{\partial x} =
    \begin{cases}
        \dfrac{\bar y - y\,\langle y, \bar y\rangle}{\|x\|_2} & \|x\|_2 \ge \epsilon \\[1ex]
        \dfrac{\bar y}{\epsilon} & \|x\|_2 < \epsilon
    \end{cases}

Below :math:`\epsilon` the map is the linear ``x / eps``, so a zero vector maps to zero and its
gradient is the upstream gradient times 1e12: finite, but huge. That is what PyTorch's autograd
gives (``clamp_min`` passes the gradient where ``norm >= eps``, blocks it below), and what the
upstream code of attention transfer, SP and RKD angle (RepDistiller's ``distiller_zoo``) inherits.

Where :math:`\sum_i x_i^2` overflows, the norm is computed as :math:`a \sqrt{\sum_i (x_i / a)^2}`
with :math:`a = \max_i |x_i|` (the scaling of LAPACK's ``dnrm2``): the feature losses normalise
rows of squared features (attention maps, Gram matrices), whose squares overflow long before
the features do. Used by :mod:`minikd.losses.features` and :mod:`minikd.losses.relations`; the
functions trust their callers (checked float arrays).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NORMALIZE_EPS", "l2_norm", "l2_normalize", "l2_normalize_vjp"]

NORMALIZE_EPS = 1e-12  # PyTorch's F.normalize default


def l2_norm(x):
    """``||x||_2`` over the last axis, shape (..., 1); where the sum of squares overflows, it is
    computed again as ``a ||x / a||`` with ``a = max |x|``."""
    with np.errstate(over="ignore"):  # an overflow is caught below and computed without it
        norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]  # (..., 1)
    if np.isfinite(norm).all():
        return norm
    a = np.abs(x).max(axis=-1, keepdims=True)  # (..., 1) the largest |x_i|
    a = np.where(a > 0, a, 1.0)  # a zero vector has norm 0 at any scale
    return a * np.sqrt(np.einsum("...i,...i->...", x / a, x / a))[..., None]  # (..., 1)


def l2_normalize(x, eps=NORMALIZE_EPS):
    """Return ``(y, norm)``: ``y = x / max(||x||, eps)`` over the last axis, ``norm = ||x||``."""
    norm = l2_norm(x)  # (..., 1)
    return x / np.maximum(norm, eps), norm


def l2_normalize_vjp(dy, y, norm, eps=NORMALIZE_EPS):
    """Gradient with respect to ``x`` of ``<l2_normalize(x)[0], dy>``, given ``y`` and ``norm``."""
    # The projection term is only there when the norm is not clamped (PyTorch: norm >= eps).
    radial = np.where(norm >= eps, np.einsum("...i,...i->...", y, dy)[..., None], 0.0)  # <y, dy>
    return (dy - y * radial) / np.maximum(norm, eps)
