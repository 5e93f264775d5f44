"""The one check of a student/teacher pair."""

from __future__ import annotations

from .arrays import as_float_array, check_same_shape, common_float_dtype
from .messages import param_error
from .ranges import check_feature_range, check_logit_range

__all__ = ["check_pair"]


def check_pair(student, teacher, func, *, names=("student_logits", "teacher_logits"),
               temperature=None, match="shape", ndim=None, min_ndim=2, power=1.0):
    """The one check of a student/teacher pair: two float arrays of one dtype, in range.

    Parameters
    ----------
    student, teacher : array_like
        Converted like :func:`as_float_array`; float32 only when both are float32.
    func : str
        The public function's name, for the messages.
    names : (str, str)
        The two parameters' names.
    temperature : float, optional
        Logits: each must satisfy :func:`check_logit_range` at this T. Without it the pair are
        features, whose squares are summed: :func:`check_feature_range` (with ``power``).
    match : {"shape", "rows"}
        Same shape, or only the same number of rows (relation losses compare N x N matrices).
    ndim, min_ndim : int
        Exact or minimum number of dimensions of each.

    Returns
    -------
    (ndarray, ndarray)
        The student and the teacher, as arrays of one float dtype.
    """
    s = as_float_array(student, names[0], func, ndim=ndim, min_ndim=min_ndim)
    t = as_float_array(teacher, names[1], func, ndim=ndim, min_ndim=min_ndim)
    if match == "shape":
        check_same_shape(s, t, names[0], names[1], func)
    elif t.shape[0] != s.shape[0]:
        raise param_error(names[1], func, f"an array with N = {s.shape[0]} rows (one per row of "
                          f"{names[0]})", f"shape {t.shape}")
    dtype = common_float_dtype(s, t)
    s, t = s.astype(dtype, copy=False), t.astype(dtype, copy=False)
    for x, name in ((s, names[0]), (t, names[1])):
        if temperature is None:
            check_feature_range(x, name, func, power=power)
        else:
            check_logit_range(x, temperature, name, func)
    return s, t
