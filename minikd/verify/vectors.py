r"""Golden vectors: small fixed inputs with float64 expected values and gradients, as JSON.

Any implementation, in any language, can be tested against the file without minikd installed:
for each case, call your version of ``function`` on ``inputs`` and ``params``, and compare the
loss with ``loss`` and the gradient with respect to ``inputs[grad_wrt]`` with ``grad``.

The document (``FORMAT_VERSION`` 1; the schema is in ``docs/verify.md``)::

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

* :func:`golden_vectors` computes the document; :func:`write_golden_vectors` writes it
  (atomically); this is what ``minikd vectors`` calls.
* :func:`load_vectors` reads and checks a vectors file (this format, or the PyTorch fixtures
  ``tests/data/torch_fixtures.json``, which share it).
* :func:`evaluate_case` runs minikd on one case; :func:`compare_vectors` runs every case and
  reports the relative loss error and the normwise gradient error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..losses.softmax import log_softmax

FORMAT = "minikd-vectors"
FORMAT_VERSION = 1

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "compare_vectors",
    "evaluate_case",
    "golden_cases",
    "golden_vectors",
    "load_vectors",
    "write_golden_vectors",
]

# The kd-anchors.md §1.1 inputs: small enough to check by hand.
_ZS = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
_ZT = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
_Y = [2, 0]
# Token logits (N, L, V) = (2, 3, 4) with padding and ignored labels.
_TS = [[[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0], [0.0, 0.0, 3.0, -2.0]],
       [[-1.0, 2.5, 0.5, 0.75], [2.0, 1.0, 0.0, -1.0], [0.3, 0.1, -0.2, 0.4]]]
_TT = [[[1.0, -0.5, 1.5, 0.5], [0.5, 1.0, -1.0, 2.0], [0.2, 0.4, 2.0, -1.0]],
       [[0.0, 2.0, 1.0, 0.0], [1.0, 2.0, 0.5, -0.5], [-0.3, 0.6, 0.1, 0.2]]]
_TMASK = [[True, True, False], [True, True, True]]
_TY = [[2, -100, 3], [1, 0, -100]]


def _case(name, function, inputs, params=None, grad_wrt=None):
    first = next(k for k, v in inputs.items() if isinstance(v, list) and _is_float_list(v))
    return {"name": name, "function": function, "inputs": inputs, "params": params or {},
            "grad_wrt": grad_wrt or first}


def _is_float_list(v):
    while isinstance(v, list) and v:
        v = v[0]
    return isinstance(v, float)


def golden_cases():
    """The golden cases without their outputs: name, function, inputs, params, grad_wrt.

    Returns
    -------
    list of dict
    """
    pair = {"student_logits": _ZS, "teacher_logits": _ZT}
    tok = {"student_logits": _TS, "teacher_logits": _TT}
    cases = [
        _case("cross_entropy", "cross_entropy", {"logits": _ZS, "labels": _Y}),
        _case("cross_entropy/sum", "cross_entropy", {"logits": _ZS, "labels": _Y},
              {"reduction": "sum"}),
        _case("cross_entropy/tokens-ignore_index", "cross_entropy",
              {"logits": _TS, "labels": _TY}),
    ]
    for T in (1.0, 4.0):
        cases += [
            _case(f"soft_cross_entropy/T={T:g}", "soft_cross_entropy", pair,
                  {"temperature": T}),
            _case(f"kl_divergence/T={T:g}", "kl_divergence", pair, {"temperature": T}),
            _case(f"kd_loss/T={T:g}", "kd_loss", pair, {"temperature": T}),
        ]
    cases += [
        _case("kl_divergence/mean", "kl_divergence", pair, {"temperature": 2.0,
                                                             "reduction": "mean"}),
        _case("kd_loss/sum", "kd_loss", pair, {"temperature": 4.0, "reduction": "sum"}),
        _case("kd_loss/mean", "kd_loss", pair, {"temperature": 4.0, "reduction": "mean"}),
        _case("kd_loss/tokens-mask", "kd_loss", {**tok, "mask": _TMASK}, {"temperature": 2.0}),
        _case("distillation_loss/T=4-alpha=0.9", "distillation_loss", {**pair, "labels": _Y},
              {"temperature": 4.0, "alpha": 0.9}),
        _case("distillation_loss/alpha=1-no-labels", "distillation_loss",
              {**pair, "labels": None}, {"temperature": 4.0, "alpha": 1.0}),
        _case("distillation_loss/tokens-ignore_index", "distillation_loss",
              {**tok, "labels": _TY}, {"temperature": 2.0, "alpha": 0.5}),
        _case("dkd_loss/defaults", "dkd_loss", {**pair, "labels": _Y}),
        _case("dkd_loss/T=1-alpha=1-beta=2", "dkd_loss", {**pair, "labels": _Y},
              {"alpha": 1.0, "beta": 2.0, "temperature": 1.0}),
        _case("dkd_loss/two-classes", "dkd_loss",
              {"student_logits": [[0.5, -1.0], [2.0, 1.0]],
               "teacher_logits": [[1.0, 0.0], [-0.5, 0.5]], "labels": [0, 1]}),
    ]
    from .conventions import CONVENTIONS

    for name in CONVENTIONS["kd"]:
        cases.append(_case(f"kd_loss_as/{name}/T=4-alpha=0.9", "kd_loss_as",
                           {**pair, "labels": _Y},
                           {"convention": name, "temperature": 4.0, "alpha": 0.9}))
        cases.append(_case(f"kd_loss_as/{name}/T=4-soft-only", "kd_loss_as", dict(pair),
                           {"convention": name, "temperature": 4.0, "alpha": 1.0}))
    cases.append(_case("kd_loss_as/hf_distilbert/tokens", "kd_loss_as",
                       {**tok, "labels": _TY, "mask": _TMASK},
                       {"convention": "hf_distilbert", "temperature": 2.0, "alpha": 0.5}))
    return cases + _feature_cases(CONVENTIONS)


# Features (N, F) = (3, 2) student and (3, 3) teacher; maps (N, C, H, W) = (2, 2, 2, 2).
_FS = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]
_FT = [[1.0, 0.0, -0.5], [0.25, 1.0, 1.5], [-1.0, 0.5, 2.0]]
_MS = [[[[0.5, -1.0], [0.0, 2.0]], [[1.0, 0.5], [-0.5, 0.25]]],
       [[[0.0, 1.5], [1.0, -1.0]], [[2.0, 0.0], [0.5, 0.75]]]]
_MT = [[[[1.0, 0.0], [0.5, 1.5]], [[-0.5, 1.0], [0.25, 2.0]]],
       [[[0.5, 0.5], [2.0, 0.0]], [[1.0, -1.5], [0.0, 1.0]]]]


def _feature_cases(conventions):
    rel = {"s": _FS, "t": _FT}
    maps = {"student_maps": _MS, "teacher_maps": _MT}
    cases = [
        _case("hint_loss", "hint_loss", {"student_features": _FS,
                                         "teacher_features": [r[:2] for r in _FT]}),
        _case("cosine_loss", "cosine_loss", {"student_hidden": _FS,
                                             "teacher_hidden": [r[:2] for r in _FT]}),
        _case("cosine_loss/zero-row", "cosine_loss",
              {"student_hidden": [[0.0, 0.0], [1.0, 2.0]],
               "teacher_hidden": [[1.0, 1.0], [2.0, -1.0]]}),
        _case("attention_transfer_loss/code", "attention_transfer_loss", maps),
        _case("attention_transfer_loss/paper", "attention_transfer_loss", maps,
              {"mode": "paper"}),
        _case("attention_transfer_loss/code-teacher-3-channels", "attention_transfer_loss",
              {"student_maps": _MS, "teacher_maps": [m + [m[0]] for m in _MT]}),
    ]
    for fn in ("rkd_distance_loss", "rkd_angle_loss", "sp_loss", "pkt_loss"):
        cases.append(_case(fn, fn, rel))
    for name in conventions["at"]:
        cases.append(_case(f"at_loss_as/{name}", "at_loss_as", maps, {"convention": name}))
    for name in conventions["rkd"]:
        cases.append(_case(f"rkd_loss_as/{name}", "rkd_loss_as", rel, {"convention": name}))
    return cases + _token_cases()


# Token logits (N, L, V) = (2, 3, 4) above, with labels (-100 = ignored) and a mask; the top-2
# teacher tokens per position stored as logits (renorm) or log-probabilities (bucket).
_TOPK_IDX = [[[2, 0], [3, 0], [2, 1]], [[1, 2], [1, 0], [1, 3]]]


def _token_cases():
    pair = {"z_s": _TS, "z_t": _TT, "labels": _TY}
    tt = np.asarray(_TT)
    idx = np.asarray(_TOPK_IDX)
    log_p = log_softmax(tt)  # (N, L, V) at T = 1
    cases = [
        _case("forward_kl", "forward_kl", pair),
        _case("forward_kl/T=2-mask", "forward_kl", {"z_s": _TS, "z_t": _TT, "mask": _TMASK},
              {"temperature": 2.0}),
        _case("reverse_kl", "reverse_kl", pair),
        _case("reverse_kl/T=2-no-T2", "reverse_kl", pair,
              {"temperature": 2.0, "t2_scale": False}),
        _case("skew_kl/alpha=0.1", "skew_kl", pair, {"alpha": 0.1}),
        _case("skew_reverse_kl/alpha=0.1", "skew_reverse_kl", pair, {"alpha": 0.1}),
        _case("token_divergence/reverse_kl-sum", "token_divergence", pair,
              {"divergence": "reverse_kl", "reduction": "sum"}),
        _case("topk_divergence/renorm", "topk_divergence",
              {"z_s": _TS, "topk_values": np.take_along_axis(tt, idx, -1).tolist(),
               "topk_indices": _TOPK_IDX, "labels": _TY}, {"tail": "renorm"}),
        _case("topk_divergence/bucket", "topk_divergence",
              {"z_s": _TS, "topk_values": np.take_along_axis(log_p, idx, -1).tolist(),
               "topk_indices": _TOPK_IDX, "labels": _TY}, {"tail": "bucket"}),
    ]
    for conv in ("trl", "gkd", "trl_legacy", "trl_logspace"):
        for beta in (0.3, 0.5):
            cases.append(_case(f"generalized_jsd/{conv}-beta={beta:g}", "generalized_jsd", pair,
                               {"beta": beta, "convention": conv, "t2_scale": False}))
    return cases


# ---------------------------------------------------------------- evaluation

def _decode(value):
    """A JSON value back to what minikd takes: nested lists become arrays (float64 for floats,
    int64 for integers, bool for booleans); scalars, strings and None stay as they are."""
    if isinstance(value, list):
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            return arr.astype(np.float64)
        return arr
    return value


# Version-1 files name the token losses' logits z_s and z_t, the parameters' names when the
# files were written; the functions now call them student_logits and teacher_logits.
_RENAMED_INPUTS = {"z_s": "student_logits", "z_t": "teacher_logits"}


def evaluate_case(case):
    """Run minikd on one case: ``minikd.<function>(**inputs, **params)``.

    Parameters
    ----------
    case : dict
        A case of a vectors document (``function``, ``inputs``, ``params``).

    Returns
    -------
    LossGrad
        The loss and the gradient with respect to ``inputs[case["grad_wrt"]]``.
    """
    import minikd

    fn = getattr(minikd, case["function"], None)
    if fn is None or not callable(fn) or case["function"].startswith("_"):
        raise ValueError(f"The 'function' of case {case.get('name')!r} must name a public "
                         f"minikd loss. Got {case['function']!r} instead.")
    kwargs = {_RENAMED_INPUTS.get(k, k): _decode(v) for k, v in case["inputs"].items()}
    kwargs.update(case.get("params", {}))
    return fn(**kwargs)


def _encode_case(case, result):
    grad = np.asarray(result.grad, dtype=np.float64)
    out = dict(case)
    out["loss"] = float(result.loss)
    out["grad"] = grad.tolist()
    return out


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

    cases = [_encode_case(c, evaluate_case(c)) for c in golden_cases()]
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
    """Write :func:`golden_vectors` to ``path`` as JSON, atomically.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so a reader never sees half a file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, e.g. ``tests/data/golden_vectors.json``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return _write_json(golden_vectors(), path)


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


def _write_json(doc, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_dumps(doc))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a data file is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_vectors(path):
    """Read a vectors file and check its format, version and the shape of every case.

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
        If the file is not a minikd vectors document of a known version, or a case lacks a
        field or has a gradient shaped unlike its ``grad_wrt`` input.
    """
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a minikd vectors file (format {FORMAT!r}).")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {doc.get('format_version')!r}; this "
                         f"minikd reads version {FORMAT_VERSION}.")
    for case in doc.get("cases", []):
        missing = {"name", "function", "inputs", "params", "grad_wrt", "loss",
                   "grad"} - set(case)
        if missing:
            raise ValueError(f"Case {case.get('name')!r} in {path} lacks {sorted(missing)}.")
        want = np.shape(case["inputs"][case["grad_wrt"]])
        if np.shape(case["grad"]) != want:
            raise ValueError(f"Case {case['name']!r} in {path}: grad has shape "
                             f"{np.shape(case['grad'])}, its input {want}.")
    return doc


def compare_vectors(doc):
    """Run minikd on every case of a vectors document and measure the disagreement.

    Parameters
    ----------
    doc : dict
        A document from :func:`load_vectors` or :func:`golden_vectors`.

    Returns
    -------
    list of dict
        Per case: ``name``, ``loss_error`` (:math:`|a - b| / \\max(|a|, |b|)`, 0 when both are
        0) and ``grad_error`` (normwise: :math:`\\max|a - b| / \\max(\\|a\\|_\\infty,
        \\|b\\|_\\infty)`).
    """
    from .gradcheck import normwise_error

    rows = []
    for case in doc["cases"]:
        got = evaluate_case(case)
        a, b = float(got.loss), float(case["loss"])
        scale = max(abs(a), abs(b))
        loss_error = abs(a - b) / scale if scale > 0 else 0.0
        grad_error = normwise_error(np.asarray(got.grad, dtype=np.float64),
                                    np.asarray(case["grad"], dtype=np.float64))
        rows.append({"name": case["name"], "loss_error": loss_error,
                     "grad_error": float(grad_error)})
    return rows
