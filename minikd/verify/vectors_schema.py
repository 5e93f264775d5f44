"""The vectors format, checked field by field before anything is computed.

:func:`read_text` reads a file and says what it is when it is not a vectors file (a folder, a
binary or ``.npz`` file, text that is not UTF-8, a file over :data:`MAX_FILE_BYTES`).
A vectors document is a JSON object ``{"format": "minikd-vectors", "format_version": 1,
"dtype": "float64", "cases": [...], ...}``; each case names one of minikd's losses
(:data:`minikd.verify.selfcheck.LOSSES`), its ``inputs`` (arrays) and ``params`` (scalars), the
input the gradient is taken with respect to (``grad_wrt``, the student's), and the expected
``loss`` and ``grad``, which must be finite. A checker that accepted a NaN expected value, a case
that calls something other than a loss, or a gradient labelled with the teacher's input could
pass without checking anything; :func:`check_document` refuses each of those with a message that
names the case and the field.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import stat

import numpy as np

from .selfcheck import LOSSES

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_FILE_BYTES", "PARAMETER_RENAMES", "as_array",
           "check_call", "check_document", "keyword_arguments", "parameter_name", "read_text",
           "student_parameter"]

FORMAT = "minikd-vectors"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 16 * 2**20  # a vectors file is small: the PyTorch fixtures are 0.75 MB
EXPECTED = "expected a minikd vectors file (JSON text)"
MAGIC = {b"\x93NUMPY": "a NumPy .npy file", b"PK\x03\x04": "a zip archive (e.g. a NumPy .npz)",
         b"\x1f\x8b": "a gzip file", b"\x89PNG": "a PNG image", b"%PDF": "a PDF file"}
CASE_FIELDS = ("name", "function", "inputs", "params", "grad_wrt", "loss", "grad")
# Files written by minikd 0.1.0 name the token losses' logits z_s, z_t and the relation losses'
# features s, t; those parameters are now student_/teacher_logits and student_/teacher_features.
# An input named the old way is passed under the new name when the loss has no parameter of the
# old name, so a version 1 file stays valid.
PARAMETER_RENAMES = {"z_s": "student_logits", "z_t": "teacher_logits",
                     "s": "student_features", "t": "teacher_features"}


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _short(value):
    """A bounded repr of a bad value, for a one-line message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def as_array(value, what):
    """A JSON array (nested lists of numbers or booleans) as a rectangular numpy array."""
    if not isinstance(value, list):
        raise ValueError(f"{what} must be an array (a nested list of numbers). Got "
                         f"{type(value).__name__} instead.")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise ValueError(f"{what} must be a rectangular array of numbers. Got a ragged or too "
                         f"deeply nested list instead.") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be an array of numbers or booleans. Got an array of "
                         f"dtype {arr.dtype} instead.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what} must be finite. Got NaN or infinity instead.")
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr


def _parameters(function):
    return inspect.signature(LOSSES[function]).parameters


def student_parameter(function):
    """The loss's student input: its first parameter after any ``convention``."""
    return next(p for p in _parameters(function) if p != "convention")


def parameter_name(function, key):
    """The parameter of ``function`` an input or param named ``key`` is passed as, or None."""
    params = _parameters(function)
    if key in params:
        return key
    return PARAMETER_RENAMES[key] if PARAMETER_RENAMES.get(key) in params else None


def check_call(case, where="the case"):
    """Check the fields that say what to compute: function, inputs, params, grad_wrt."""
    if not isinstance(case, dict):
        raise ValueError(f"{where} must be a JSON object. Got {type(case).__name__} instead.")
    function = case.get("function")
    if not isinstance(function, str) or function not in LOSSES:
        raise ValueError(f"{where}: 'function' must name one of minikd's losses "
                         f"({', '.join(LOSSES)}). Got {_short(function)} instead.")
    inputs, params = case.get("inputs"), case.get("params", {})
    for field, value in (("inputs", inputs), ("params", params)):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: '{field}' must be a JSON object. Got "
                             f"{type(value).__name__} instead.")
    seen = set()
    for key, value in (*inputs.items(), *params.items()):
        name = parameter_name(function, key)
        if name is None or name in seen:
            problem = "is given twice" if name in seen else f"is not a parameter of {function}"
            raise ValueError(f"{where}: {key!r} {problem} (its parameters: "
                             f"{', '.join(_parameters(function))}).")
        seen.add(name)
        if key in inputs:
            if value is not None:
                as_array(value, f"{where}: inputs[{key!r}]")
        elif not (value is None or isinstance(value, (str, bool))
                  or (_is_real(value) and math.isfinite(value))):
            raise ValueError(f"{where}: params[{key!r}] must be a finite number, a string, a "
                             f"boolean or null. Got {_short(value)} instead.")
    wrt = case.get("grad_wrt")
    student = student_parameter(function)
    if not isinstance(wrt, str) or wrt not in inputs or parameter_name(function, wrt) != student:
        raise ValueError(f"{where}: 'grad_wrt' must name the student input of {function}, "
                         f"{student!r}, one of the case's inputs. Got {_short(wrt)} instead.")
    if not isinstance(inputs[wrt], list):
        raise ValueError(f"{where}: inputs[{wrt!r}], the student input, must be an array.")


def keyword_arguments(case):
    """``function(**kwargs)`` of a checked case: arrays decoded, old names renamed."""
    kwargs = {}
    for key, value in (*case["inputs"].items(), *case.get("params", {}).items()):
        if key in case["inputs"] and value is not None:
            value = as_array(value, key)
        kwargs[parameter_name(case["function"], key)] = value
    return kwargs


def _check_expected(case, where):
    loss, grad = case["loss"], case["grad"]
    if not (_is_real(loss) and math.isfinite(loss)):
        raise ValueError(f"{where}: 'loss', the expected value, must be a finite number. Got "
                         f"{_short(loss)} instead.")
    g = as_array(grad, f"{where}: 'grad', the expected gradient,")
    want = np.shape(case["inputs"][case["grad_wrt"]])
    if g.shape != want or g.dtype.kind not in "iuf":
        raise ValueError(f"{where}: 'grad' must be an array of numbers shaped like its input "
                         f"{case['grad_wrt']!r}, {want}. Got shape {g.shape} instead.")


def check_document(doc, source):
    """Raise ValueError, naming ``source``, unless ``doc`` is a valid vectors document."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{source} is not a minikd vectors file: expected a JSON object with "
                         f'"format": "{FORMAT}".')
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        raise ValueError(f"{source} has format_version {_short(version)}; this minikd "
                         f"reads version {FORMAT_VERSION}.")
    if doc.get("dtype", "float64") != "float64":
        raise ValueError(f"{source} has dtype {_short(doc.get('dtype'))}; minikd vectors "
                         "are float64.")
    cases = doc.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ValueError(f"{source}: 'cases' must be a non-empty list of cases (a file with no "
                         "case checks nothing).")
    names = set()
    for i, case in enumerate(cases):
        where = f"{source}, case {i}"
        check_call(case, where)
        missing = [f for f in CASE_FIELDS if f not in case]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)}.")
        name = case["name"]
        if not isinstance(name, str) or not name or name in names:
            raise ValueError(f"{where}: 'name' must be a string, unique in the file. Got "
                             f"{_short(name)} instead.")
        names.add(name)
        _check_expected(case, f"{source}, case {name!r}")


# ---------------------------------------------------------------- the file

def read_text(path):
    """The file's text, or a ValueError saying what the file is instead."""
    name = repr(os.fspath(path))
    try:
        info = os.stat(path)
    except OSError as err:
        raise ValueError(f"{name} cannot be read ({err.strerror}); {EXPECTED}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{name} is a folder; {EXPECTED}.")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{name} is not a regular file; {EXPECTED}.")
    if info.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{name} is {info.st_size / 2**20:.1f} MB; {EXPECTED} of at most "
                         f"{MAX_FILE_BYTES // 2**20} MB.")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"{name} cannot be read ({err.strerror}); {EXPECTED}.") from None
    kind = next((what for magic, what in MAGIC.items() if data.startswith(magic)), None)
    if kind is not None or b"\x00" in data:
        raise ValueError(f"{name} is {kind or 'a binary file'}; {EXPECTED}.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{name} is not UTF-8 text (byte {data[err.start]:#04x} at offset "
                         f"{err.start}); {EXPECTED}.") from None
