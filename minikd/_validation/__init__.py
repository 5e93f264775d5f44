"""Checks at the public boundary.

Every public function converts and checks its inputs here, once, so that bad input fails with a
message that names the function, the parameter, what was expected and what was given, in the
shape scikit-learn uses:

    The 'temperature' parameter of kd_loss must be a float in the range [1e-6, 1e6].
    Got -1.0 instead.

Nothing below the boundary re-validates: the private ``_``-functions trust their callers.

The checks live in one module per kind of input; every name is importable from here:

- ``messages``: :func:`param_error`, the one message shape;
- ``arrays``: real, finite float arrays of one dtype and shape;
- ``ranges``: finite logits and features that would still overflow, and the memory limit;
- ``pairs``: the one check of a student/teacher pair;
- ``labels``: class labels, ``ignore_index`` and position masks;
- ``scalars``: temperatures, bounded floats, ints, bools, choices and ``rng``.
"""

from __future__ import annotations

from .arrays import as_float_array, check_same_shape, common_float_dtype
from .labels import as_labels, check_labels, check_mask
from .messages import param_error
from .pairs import check_pair
from .ranges import (
    check_feature_range,
    check_logit_range,
    check_memory,
    feature_limit,
    logit_limit,
    memory_limit,
)
from .scalars import (
    TEMPERATURE_RANGE,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_nonnegative,
    check_positive,
    check_rng,
    check_temperature,
    check_unit_interval,
)

__all__ = [
    "TEMPERATURE_RANGE",
    "as_float_array",
    "as_labels",
    "check_bool",
    "check_choice",
    "check_feature_range",
    "check_fraction",
    "check_int",
    "check_labels",
    "check_logit_range",
    "check_mask",
    "check_memory",
    "check_nonnegative",
    "check_positive",
    "check_pair",
    "check_rng",
    "check_same_shape",
    "check_temperature",
    "check_unit_interval",
    "common_float_dtype",
    "feature_limit",
    "logit_limit",
    "memory_limit",
    "param_error",
]
