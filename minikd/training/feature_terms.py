r"""The distillation methods' feature or relation term F, on one (student, teacher) layer pair.

:class:`minikd.Distiller` adds :math:`\beta \sum_{(i, j)} F(H^s_i, H^t_j)` to its KD blend
(:math:`H_i` = ``cache.hidden[i]``), with F one of the following, each called per mini-batch
through its kernel (the Distiller checks the data once, when it is built):

* ``"fitnets"``: :func:`minikd.hint_loss` of a learned linear regressor's output (the
  regressor is applied in the distiller's step, which owns its parameters);
* ``"at"``: :func:`minikd.attention_transfer_loss` on ``(N, 1, H)`` (an MLP layer is one
  channel over H positions; equal widths);
* ``"sp"``, ``"pkt"``, ``"cosine"``: :func:`minikd.sp_loss`, :func:`minikd.pkt_loss`,
  :func:`minikd.cosine_loss` (equal widths for cosine);
* ``"rkd"``: :math:`w_d\,` :func:`minikd.rkd_distance_loss` :math:`+ w_a\,`
  :func:`minikd.rkd_angle_loss` with RepDistiller's weights (25, 50).

A one-row mini-batch has no pair of rows: its RKD distance term is 0 with a zero gradient (sp,
pkt and the RKD angle are already 0 or constant there, see their docstrings).

The library weights :data:`DEFAULT_BETA` are RepDistiller's (``scripts/run_cifar_distill.sh``,
mdistiller's configs agree); cosine's is the Hugging Face DistilBERT README's.
"""

from __future__ import annotations

import numpy as np

from .._validation import param_error
from ..losses.features import attention_transfer_loss_kernel, cosine_loss_kernel, hint_loss_kernel
from ..losses.relations import (
    pkt_loss_kernel,
    rkd_angle_loss_kernel,
    rkd_distance_loss_kernel,
    sp_loss_kernel,
)

__all__ = ["DEFAULT_BETA", "METHODS", "RKD_WEIGHTS", "check_layers", "feature_term"]

METHODS = ("kd", "fitnets", "at", "sp", "rkd", "pkt", "cosine")
DEFAULT_BETA = {"kd": 0.0, "fitnets": 100.0, "at": 1000.0, "sp": 3000.0, "rkd": 1.0,
                "pkt": 30000.0, "cosine": 1.0}
RKD_WEIGHTS = (25.0, 50.0)  # w_d, w_a inside the RKD term (RepDistiller, mdistiller)


def feature_term(method, h_s, h_t):
    """``F(h_s, h_t)`` and dF/dh_s for a method other than "kd": the losses' kernels.

    ``h_s`` (B, H_s) and ``h_t`` (B, H_t) are float arrays of one dtype; for "fitnets"
    ``h_s`` is the regressor's output (B, H_t). Returns ``(loss, dh_s)``, ``dh_s`` shaped like
    ``h_s``. No checks: a non-finite feature gives a NaN loss, which :func:`minikd.train_loop`
    reports as NonFiniteLossError.
    """
    if method == "fitnets":
        return hint_loss_kernel(h_s, h_t)
    if method == "at":  # an MLP layer is one channel over H positions
        loss, dmaps = attention_transfer_loss_kernel(h_s[:, None, :], h_t[:, None, :], p=2,
                                                     mode="code")
        return loss, dmaps[:, 0, :]
    if method == "rkd":
        w_d, w_a = RKD_WEIGHTS
        angle = rkd_angle_loss_kernel(h_s, h_t)
        if h_s.shape[0] < 2:
            # A one-row mini-batch (the remainder when N % batch_size == 1) has no pair: the
            # distance term is 0 with a zero gradient there (its mean over pairs is 0 / 0).
            return w_a * angle.loss, w_a * angle.grad
        dist = rkd_distance_loss_kernel(h_s, h_t)
        return w_d * dist.loss + w_a * angle.loss, w_d * dist.grad + w_a * angle.grad
    kernel = {"sp": sp_loss_kernel, "pkt": pkt_loss_kernel, "cosine": cosine_loss_kernel}[method]
    return kernel(h_s, h_t)


def check_layers(layers, method, student_sizes, teacher_sizes, func):
    """The checked layer pairs ``[(i, j)]``: 0-based hidden-layer indices (``cache.hidden[i]``).

    ``layers`` is a sequence of (student layer, teacher layer) pairs of ints, negative ones
    counting from the last hidden layer; None means ``[(-1, -1)]``. "at" and "cosine" need
    equal widths in each pair.
    """
    n_s, n_t = len(student_sizes) - 2, len(teacher_sizes) - 2
    if n_s < 1 or n_t < 1:
        raise param_error("method", func, "'kd' when the student or the teacher has no "
                          "hidden layer", repr(method))
    if layers is None:
        layers = [(-1, -1)]
    try:
        pairs = [tuple(p) for p in layers]
    except TypeError as err:
        raise param_error("layers", func, "a sequence of (student layer, teacher layer) "
                          "pairs", repr(layers), TypeError) from err
    if not pairs:
        raise param_error("layers", func, "at least one (student, teacher) pair", "[]")
    out = []
    for p in pairs:
        if len(p) != 2 or not all(isinstance(v, (int, np.integer))
                                  and not isinstance(v, (bool, np.bool_)) for v in p):
            raise param_error("layers", func, "pairs of ints (student layer, teacher layer)",
                              repr(p), TypeError)
        i, j = int(p[0]), int(p[1])
        if not (-n_s <= i < n_s and -n_t <= j < n_t):
            raise param_error("layers", func, f"hidden-layer indices in [-{n_s}, {n_s}) for "
                              f"the student and [-{n_t}, {n_t}) for the teacher", repr(p))
        i, j = i % n_s, j % n_t
        h_s, h_t = student_sizes[i + 1], teacher_sizes[j + 1]  # cache.hidden[i] is h_{i+1}
        if method in ("at", "cosine") and h_s != h_t:
            raise param_error("layers", func, f"pairs of equal widths for method {method!r}",
                              f"({i}, {j}) with widths {h_s} and {h_t}")
        out.append((i, j))
    return out
