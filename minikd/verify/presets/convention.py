"""The record of one library preset, and the commits the presets' code was read at.

A :class:`Convention` names a library's definition of a loss (its class or function, the file
and commit it was read from, its code as written, how its weights map to minikd's ``alpha``)
together with the *kernel* that computes it: a pure function of checked arrays returning
:class:`minikd.LossGrad`. The public ``kd_loss_as``, ``at_loss_as`` and ``rkd_loss_as``
(:mod:`minikd.verify.conventions`) check their arguments once and call the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "KD_LIB",
    "MDISTILLER",
    "REPDISTILLER",
    "TORCHDISTILL",
    "Convention",
    "by_name",
]

# The repositories and the commits at which the presets' code was read.
REPDISTILLER = "HobbitLong/RepDistiller@b84f547c"
MDISTILLER = "megvii-research/mdistiller@a08d46f1"
TORCHDISTILL = "yoshitomo-matsubara/torchdistill@3e4373c4"
KD_LIB = "SforAiDl/KD_Lib@a94d2360"


class Convention(NamedTuple):
    """One library's definition of a loss, and the kernel that computes it.

    Attributes
    ----------
    family : str
        ``"kd"``, ``"at"`` or ``"rkd"``: which ``*_as`` function takes it.
    name : str
        The preset's name, e.g. ``"torchdistill"``.
    library : str
        The library and its class or function.
    source : str
        Repository, commit and file the formula was read from (``owner/repo@commit path``).
    formula : str
        The library's computation, as coded (PyTorch / Keras spelling).
    weights : str
        How minikd's ``alpha`` (soft weight) maps to the library's own knobs, or the fixed
        weights the library uses.
    note : str
        What differs from minikd's default, in a sentence.
    kernel : callable
        The computation on checked arrays: ``kernel(student_logits, teacher_logits, labels, *,
        temperature, alpha, mask)`` for ``"kd"``, ``kernel(student_maps, teacher_maps)`` for
        ``"at"``, ``kernel(student_features, teacher_features)`` for ``"rkd"``; returns a
        :class:`minikd.LossGrad`. Its docstring quotes the library's code.
    """

    family: str
    name: str
    library: str
    source: str
    formula: str
    weights: str
    note: str
    kernel: Callable


def by_name(*conventions):
    """``{convention.name: convention}``, in the order given."""
    return {c.name: c for c in conventions}
