r"""Golden vectors: small fixed inputs with float64 expected values and gradients, as JSON.

Any implementation, in any language, can be tested against the file without minikd installed:
for each case, call your version of ``function`` on ``inputs`` and ``params``, and compare the
loss with ``loss`` and the gradient with respect to ``inputs[grad_wrt]`` with ``grad``.

The document (``FORMAT_VERSION`` 1; the schema is in ``docs/verify.md`` and
:mod:`minikd.verify.vectors_schema`)::

    {"format": "minikd-vectors", "format_version": 1, "generator": "minikd 0.1.0",
     "dtype": "float64", "description": "...",
     "cases": [{"name": "kd_loss/T=4", "function": "kd_loss",
                "inputs": {"student_logits": [[1.0, 2.0, 3.0], ...], ...},
                "params": {"temperature": 4.0},
                "grad_wrt": "student_logits", "loss": 0.7579994683953457,
                "grad": [[-0.32990747800..., ...], ...]}, ...]}

Floats are written with ``repr`` (shortest round-trip), so reading them back gives the same
float64 bits. ``inputs`` holds arrays: float arrays are written with a decimal point, labels as
integers, masks as booleans; ``params`` holds scalars and strings.

* :func:`load_golden` reads the golden vectors that ship with minikd (package data);
  :func:`golden_vectors` computes them anew; :func:`write_golden_vectors` writes them
  (atomically, with :func:`write_vectors`); this is what ``minikd vectors`` calls.
* :func:`load_vectors` reads and checks a vectors file (this format, or the PyTorch fixtures
  ``tests/data/torch_fixtures.json``, which share it); a file that is not one fails with a
  ValueError that says what the file is and what was expected.
* :func:`evaluate_case` runs minikd on one case; :func:`compare_vectors` runs every case and
  reports the relative loss error and the normwise gradient error.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from .golden import golden_cases
from .gradcheck import normwise_error
from .selfcheck import LOSSES
from .vectors_schema import (
    EXPECTED,
    FORMAT,
    FORMAT_VERSION,
    MAX_FILE_BYTES,
    check_call,
    check_document,
    keyword_arguments,
    read_text,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "compare_vectors",
    "evaluate_case",
    "golden_cases",
    "golden_vectors",
    "load_golden",
    "load_vectors",
    "parse_vectors",
    "write_golden_vectors",
    "write_vectors",
]

GOLDEN_FILE = "golden_vectors.json"  # in minikd/verify/datafiles/


# ---------------------------------------------------------------- reading

def parse_vectors(text, source="the text"):
    """Parse and check a vectors document given as JSON text (see :func:`load_vectors`)."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ValueError(f"{source} nests its JSON too deeply to read; {EXPECTED}.") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{source} is not JSON ({err.msg} at line {err.lineno}, column "
                         f"{err.colno}); {EXPECTED}.") from None
    check_document(doc, source)
    return doc


def load_vectors(path):
    """Read a vectors file and check it completely before anything is computed.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The document.

    Raises
    ------
    ValueError
        If the file is missing, a folder, larger than :data:`MAX_FILE_BYTES`, binary, not
        JSON, not a minikd vectors document of a known version, has no case, or a case names
        something other than one of minikd's losses, lacks a field, has an input that is not
        a parameter of its loss, a ``grad_wrt`` that is not the student's input, or an expected
        value or gradient that is not finite or not shaped like its input. The message names
        the file and the case.
    """
    return parse_vectors(read_text(path), repr(os.fspath(path)))


def load_golden():
    """The golden vectors that ship with minikd (``minikd/verify/datafiles``), checked.

    Returns
    -------
    dict
        The document; :func:`compare_vectors` of it is minikd checking itself.

    Examples
    --------
    >>> doc = load_golden()
    >>> case = next(c for c in doc["cases"] if c["name"] == "kd_loss/T=4")
    >>> round(case["loss"], 10)
    0.7579994684
    """
    text = resources.files(__package__).joinpath("datafiles", GOLDEN_FILE).read_text("utf-8")
    return parse_vectors(text, f"minikd's {GOLDEN_FILE}")


# ---------------------------------------------------------------- evaluation

def evaluate_case(case):
    """Run minikd on one case: ``minikd.<function>(**inputs, **params)``.

    Parameters
    ----------
    case : dict
        A case of a vectors document (``function``, ``inputs``, ``params``, ``grad_wrt``).

    Returns
    -------
    LossGrad
        The loss and the gradient with respect to ``inputs[case["grad_wrt"]]``.

    Raises
    ------
    ValueError
        If the case does not name one of minikd's losses with valid inputs, or the loss
        refuses them; the message names the case.
    """
    where = f"case {case.get('name')!r}" if isinstance(case, dict) else "the case"
    check_call(case, where)
    try:
        return LOSSES[case["function"]](**keyword_arguments(case))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {case['function']} refused its inputs: {err}") from None


def compare_vectors(doc):
    r"""Run minikd on every case of a vectors document and measure the disagreement.

    Parameters
    ----------
    doc : dict
        A document from :func:`load_vectors` or :func:`golden_vectors` (checked again here).

    Returns
    -------
    list of dict
        Per case: ``name``, ``loss_error`` (:math:`|a - b| / \max(|a|, |b|)`, 0 when both are
        0) and ``grad_error`` (normwise: :math:`\max|a - b| / \max(\|a\|_\infty,
        \|b\|_\infty)`); inf where minikd's value is not finite, so such a case fails every
        tolerance.
    """
    check_document(doc, "the document")
    rows = []
    for case in doc["cases"]:
        got = evaluate_case(case)
        a, b = float(got.loss), float(case["loss"])
        scale = max(abs(a), abs(b))
        if not np.isfinite(a):
            loss_error = float("inf")
        else:
            loss_error = abs(a - b) / scale if scale > 0 else 0.0
        grad_error = normwise_error(np.asarray(got.grad, dtype=np.float64),
                                    np.asarray(case["grad"], dtype=np.float64))
        rows.append({"name": case["name"], "loss_error": loss_error,
                     "grad_error": float(grad_error)})
    return rows


# ---------------------------------------------------------------- writing

def golden_vectors():
    """The golden-vectors document, computed by minikd now.

    Returns
    -------
    dict
        ``{"format", "format_version", "generator", "dtype", "description", "cases"}``; every
        case carries ``loss`` (float) and ``grad`` (nested list shaped like
        ``inputs[grad_wrt]``).

    Examples
    --------
    >>> doc = golden_vectors()
    >>> doc["format_version"], len(doc["cases"]) > 30
    (1, True)
    >>> case = next(c for c in doc["cases"] if c["name"] == "kd_loss/T=4")
    >>> round(case["loss"], 10)
    0.7579994684
    """
    from .. import __version__

    cases = []
    for case in golden_cases():
        loss, grad = evaluate_case(case)
        cases.append({**case, "loss": float(loss),
                      "grad": np.asarray(grad, dtype=np.float64).tolist()})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": f"minikd {__version__}",
        "dtype": "float64",
        "description": "Call function(**inputs, **params); compare the loss with 'loss' and the "
                       "gradient with respect to inputs[grad_wrt] with 'grad'.",
        "cases": cases,
    }


def write_golden_vectors(path):
    """Write :func:`golden_vectors` to ``path`` as JSON, atomically (:func:`write_vectors`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination, e.g. ``minikd/verify/datafiles/golden_vectors.json``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_vectors(golden_vectors(), path)


def _dumps(doc):
    """JSON with one line per top-level field and per case field, arrays kept compact."""
    def dumps(v):
        return json.dumps(v, allow_nan=False, separators=(", ", ": "))

    head = [f" {dumps(k)}: {dumps(v)}" for k, v in doc.items() if k != "cases"]
    cases = []
    for case in doc["cases"]:
        fields = [f"   {dumps(k)}: {dumps(v)}" for k, v in case.items()]
        cases.append("  {\n" + ",\n".join(fields) + "\n  }")
    return ("{\n" + ",\n".join(head) + ',\n "cases": [\n' + ",\n".join(cases)
            + "\n ]\n}\n")


def write_vectors(doc, path):
    """Write a vectors document to ``path`` as JSON, atomically, after checking it.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so a reader never sees half a file. NaN and infinity are refused.

    Parameters
    ----------
    doc : dict
        A vectors document (:func:`golden_vectors`, or the PyTorch fixtures' builder).
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path
        The path written.
    """
    check_document(doc, "the document")
    text = _dumps(doc)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{os.fspath(path)!r} is a folder; expected the path of the file to "
                         "write.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a data file is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
