"""Diagnosis of a KD loss that disagrees: which known bug or library convention a user's numbers
match (``match.py``), the catalog of variants with their closed-form gradients (``catalog.py``,
``variants.py``), the inputs that separate them (``probes.py``) and the verdict as text
(``report.py``)."""

from .match import DEFAULT_TOL, diagnose
from .probes import diagnose_inputs
from .report import format_diagnosis
