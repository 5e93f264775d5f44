"""Every library preset in one registry: ``CONVENTIONS[family][name] -> Convention``.

One module per family: :mod:`.kd` (the soft/hard KD blend), :mod:`.attention` (attention
transfer), :mod:`.relational` (RKD distance + angle). Each preset is a :class:`Convention`: the
library's code as written, the repository, commit and file it was read from, and the kernel
that computes it. The public functions that take a preset's name are
:func:`minikd.kd_loss_as`, :func:`minikd.at_loss_as` and :func:`minikd.rkd_loss_as`.
"""

from .attention import AT_PRESETS
from .convention import Convention
from .kd import KD_PRESETS, KERAS_EPSILON, TOKEN_PRESETS
from .relational import KD_LIB_RKD_CLAMP, KD_LIB_RKD_MEAN_EPS, RKD_PRESETS

__all__ = ["CONVENTIONS", "Convention"]

CONVENTIONS = {"kd": KD_PRESETS, "at": AT_PRESETS, "rkd": RKD_PRESETS}
"""dict: ``CONVENTIONS[family][name] -> Convention``. Families: ``"kd"``
(:func:`minikd.kd_loss_as`), ``"at"`` (:func:`minikd.at_loss_as`), ``"rkd"``
(:func:`minikd.rkd_loss_as`)."""
