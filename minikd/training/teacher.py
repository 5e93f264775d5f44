r"""The frozen teacher of a :class:`minikd.Distiller`: checked against the student, and its
targets on the transfer set computed once.

The targets are the teacher's logits (N, C) on the transfer set ``X`` and the hidden layers
``{j: (N, H_j)}`` the feature or relation term reads, from one pass of the teacher in evaluation
mode (no dropout), in chunks of 4096 rows; or, with ``teacher=None``, the logits a teacher
computed elsewhere (any framework: they are the cache the pass would fill). Either way they are
converted to the student's dtype and checked once, here: per mini-batch the distiller only
gathers their rows.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_float_array, check_feature_range, check_logit_range, param_error
from ..nn.mlp import MLP

__all__ = ["check_teacher", "teacher_pass", "teacher_targets"]

_TEACHER_CHUNK = 4096  # rows per teacher forward pass: bounds memory on a large transfer set


def teacher_pass(teacher, X, layers):
    """The teacher's logits (N, C) on ``X`` and its hidden layers ``{j: (N, H_j)}``, in chunks."""
    logits, hidden = [], {j: [] for j in layers}
    for start in range(0, X.shape[0], _TEACHER_CHUNK):
        xb = X[start:start + _TEACHER_CHUNK].astype(teacher.dtype, copy=False)
        z, cache = teacher.forward_unchecked(xb, False)  # evaluation mode: no dropout
        logits.append(z)
        for j in layers:
            hidden[j].append(cache.hidden[j])
    return np.concatenate(logits), {j: np.concatenate(h) for j, h in hidden.items()}


def check_teacher(teacher, student, teacher_logits, method, func):
    """Raise unless ``teacher`` and ``student`` are MLPs of one input width and class count, or
    ``teacher`` is None with ``teacher_logits`` given and ``method`` "kd"."""
    if teacher is None and teacher_logits is None:
        raise param_error("teacher", func, "an MLP, or None with teacher_logits given",
                          "None with teacher_logits=None", TypeError)
    if teacher is not None and teacher_logits is not None:
        raise param_error("teacher_logits", func, "None when a teacher MLP is given (its "
                          "logits are computed here), or teacher=None",
                          "both a teacher and teacher_logits")
    if teacher is None and method != "kd":
        raise param_error("method", func, "'kd' when only teacher_logits are given "
                          f"(method {method!r} needs the teacher network's hidden layers)",
                          repr(method))
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, MLP) and not (name == "teacher" and model is None):
            raise param_error(name, func, "an MLP", type(model).__name__, TypeError)
    if teacher is not None and (teacher.sizes[0] != student.sizes[0]
                                or teacher.sizes[-1] != student.sizes[-1]):
        raise param_error("student", func, f"an MLP with the teacher's input width "
                          f"{teacher.sizes[0]} and {teacher.sizes[-1]} classes",
                          f"sizes {list(student.sizes)}")


def teacher_targets(teacher, X, teacher_logits, layers, student, temperature, method, func):
    """The teacher's logits (N, C) and hidden layers ``{j: (N, H_j)}`` on the checked transfer
    set ``X``, in the student's dtype, checked for the temperature and the method's term."""
    n, dtype = X.shape[0], student.dtype
    if teacher is None:  # given logits are the cache: (N, C), one row per row of X
        logits, hidden = as_float_array(teacher_logits, "teacher_logits", func, ndim=2,
                                        check_finite=False), {}
        if logits.shape != (n, student.sizes[-1]):
            raise param_error("teacher_logits", func, f"an array of shape ({n}, "
                              f"{student.sizes[-1]}) (one row of the student's classes per "
                              "row of X)", f"shape {logits.shape}")
    else:
        logits, hidden = teacher_pass(teacher, X, layers)
    logits = logits.astype(dtype, copy=False)  # (N, C)
    hidden = {j: h.astype(dtype, copy=False) for j, h in hidden.items()}  # {j: (N, H_j)}
    check_logit_range(logits, temperature, "teacher_logits" if teacher is None
                      else "X (the teacher's logits on it)", func)
    for j, h_t in hidden.items():
        check_feature_range(h_t, f"X (the teacher's hidden layer {j} on it)", func,
                            power=2.0 if method == "at" else 1.0)
    return logits, hidden
