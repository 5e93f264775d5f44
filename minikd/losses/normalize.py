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
anchors (attention transfer, SP, RKD angle) inherit. Used by :mod:`minikd.features` and
:mod:`minikd.relations`; private because it trusts its callers.
"""

from __future__ import annotations

import numpy as np

NORMALIZE_EPS = 1e-12  # PyTorch's F.normalize default


def l2_normalize(x, eps=NORMALIZE_EPS):
    """Return ``(y, norm)``: ``y = x / max(||x||, eps)`` over the last axis, ``norm = ||x||``."""
    norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]  # (..., 1)
    return x / np.maximum(norm, eps), norm


def l2_normalize_vjp(dy, y, norm, eps=NORMALIZE_EPS):
    """Gradient with respect to ``x`` of ``<l2_normalize(x)[0], dy>``, given ``y`` and ``norm``."""
    # The projection term is only there when the norm is not clamped (PyTorch: norm >= eps).
    radial = np.where(norm >= eps, np.einsum("...i,...i->...", y, dy)[..., None], 0.0)
    return (dy - y * radial) / np.maximum(norm, eps)
