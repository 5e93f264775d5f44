"""``minikd diagnose``: name the known bug (or library convention) a KD loss's numbers match.

Two steps, both through ``.npz`` files (``numpy.savez``, read with ``allow_pickle=False``)::

    minikd diagnose --make-inputs inputs.npz     # student_logits, teacher_logits, labels,
                                                 # temperature, alpha
    # run your loss on them; save the same keys plus loss (and grad, shaped like
    # student_logits) to results.npz
    minikd diagnose results.npz                  # the verdict; --json for machines

``alpha`` NaN (or absent, or ``--soft-only``) means the loss is the soft term alone. Exit status: 0
when a variant matches, 1 when none does, 2 for a bad argument or file (one line on stderr). No
math here: :func:`minikd.diagnose`, :func:`minikd.diagnose_inputs` and
:func:`minikd.verify.diagnosis.format_diagnosis` do the work.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile

import numpy as np

from .common import EXIT_FAIL, EXIT_OK, UsageError, nonneg_int, open_unit_float, positive_int
from .outputs import check_output_file

HELP = "name the known bug or library convention a KD loss's numbers match"
DESCRIPTION = ("Write inputs on which every known variant of the KD loss differs "
               "(--make-inputs), run your own loss on them, and let minikd name the variant "
               "(a known bug such as reduction='mean', or a library's convention) that your "
               "numbers match, with the line to change. Exit status 0 on a match, 1 on none.")
PROG = "minikd diagnose"
KEYS = ("student_logits", "teacher_logits", "labels", "temperature", "alpha")


def add_arguments(parser):
    from ..verify.diagnosis import DEFAULT_TOL

    """The arguments of ``minikd diagnose`` on its subcommand parser."""
    parser.add_argument("results", nargs="?", metavar="RESULTS.npz",
                        help="the inputs (student_logits, teacher_logits, labels, temperature, "
                             "alpha) plus your loss's 'loss' and, optionally, its 'grad' with "
                             "respect to student_logits")
    parser.add_argument("--make-inputs", metavar="INPUTS.npz",
                        help="write inputs on which every two variants differ, then stop")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --make-inputs file")
    parser.add_argument("--soft-only", action="store_true",
                        help="your loss is the soft term alone, without the hard cross-entropy "
                             "(with --make-inputs: write alpha = nan)")
    parser.add_argument("--tol", type=open_unit_float, default=DEFAULT_TOL,
                        help=f"relative tolerance of a match (default: {DEFAULT_TOL:g})")
    parser.add_argument("--top", type=positive_int, default=5,
                        help="how many variants the table shows (default: 5)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON (every variant, best first) instead of the report")
    g = parser.add_argument_group("with --make-inputs")
    g.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    g.add_argument("--n-samples", type=positive_int, default=5, metavar="N",
                   help="rows of logits (default: 5)")
    g.add_argument("--n-classes", type=positive_int, default=7, metavar="C",
                   help="classes, not N (default: 7)")
    g.add_argument("--temperature", type=float, default=3.0, metavar="T",
                   help="temperature, not 1 (default: 3)")
    g.add_argument("--alpha", type=float, default=0.7,
                   help="weight of the soft term, not 0.5 (default: 0.7)")


def _write_npz(path, arrays):
    """np.savez to a temporary file next to ``path``, then os.replace: never half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".minikd-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _make_inputs(args):
    check_output_file(args, "make_inputs")
    alpha = None if args.soft_only else args.alpha
    try:
        from ..verify.diagnosis import diagnose_inputs

        x = diagnose_inputs(args.seed, n_samples=args.n_samples, n_classes=args.n_classes,
                            temperature=args.temperature, alpha=alpha)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    arrays = {key: x[key] for key in KEYS}
    arrays["temperature"] = np.float64(x["temperature"])
    arrays["alpha"] = np.float64(math.nan if alpha is None else alpha)
    try:
        _write_npz(args.make_inputs, arrays)
    except OSError as err:
        raise UsageError(f"cannot write {args.make_inputs}: {err.strerror or err}") from None
    N, C = x["student_logits"].shape
    summary = {"path": args.make_inputs, "n_samples": N, "n_classes": C,
               "temperature": x["temperature"], "alpha": alpha}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        blend = "soft term only" if alpha is None else f"alpha = {alpha:g}"
        print(f"wrote {args.make_inputs}: N = {N}, C = {C}, T = {x['temperature']:g}, {blend}. "
              f"Run your loss on these inputs, add 'loss' (and 'grad') to the file and run "
              f"`minikd diagnose {args.make_inputs}`.")
    return EXIT_OK


def _scalar(data, key, path):
    value = data[key]
    if value.size != 1 or value.dtype.kind not in "fiu":
        raise UsageError(f"{path}: '{key}' must be a single number, got an array of dtype "
                        f"{value.dtype} and shape {value.shape}")
    return float(value.reshape(-1)[0])


def _read_results(path, soft_only):
    """The keyword arguments of diagnose, from the file (checked keys and scalars)."""
    try:
        if not os.path.isfile(path):
            raise UsageError(f"cannot read {path}: no such file")
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{path} is not an .npz file (numpy.savez writes one)")
        with np.load(path, allow_pickle=False) as data:
            data = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UsageError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    alpha = None
    if "alpha" in data and not soft_only:
        alpha = _scalar(data, "alpha", path)
        alpha = None if math.isnan(alpha) else alpha
    required = ["student_logits", "teacher_logits", "temperature", "loss"]
    required += ["labels"] if alpha is not None else []
    missing = [key for key in required if key not in data]
    if missing:
        raise UsageError(f"{path} has no {', '.join(repr(k) for k in missing)} (it has: "
                        f"{', '.join(sorted(data)) or 'nothing'})")
    return {"student_logits": data["student_logits"], "teacher_logits": data["teacher_logits"],
            "labels": data.get("labels") if alpha is not None else None,
            "temperature": _scalar(data, "temperature", path), "alpha": alpha,
            "loss": _scalar(data, "loss", path), "grad": data.get("grad")}


def _as_json(matches, kwargs, tol):
    rows = []
    for m in matches:
        row = m._asdict()
        row["same_as"] = list(m.same_as)
        row["ties"] = [{"name": name, "separated_by": what} for name, what in m.ties]
        rows.append(row)
    return {"temperature": kwargs["temperature"], "alpha": kwargs["alpha"], "tol": tol,
            "gradient_given": kwargs["grad"] is not None, "matches": rows}


def run(args):
    """Run ``minikd diagnose``; returns the exit status (0 match, 1 no match, 2 bad input)."""
    try:
        if (args.results is None) == (args.make_inputs is None):
            raise UsageError("give either RESULTS.npz or --make-inputs INPUTS.npz")
        if args.make_inputs is not None:
            return _make_inputs(args)
        kwargs = _read_results(args.results, args.soft_only)
        try:
            from ..verify.diagnosis import diagnose

            matches = diagnose(**kwargs, tol=args.tol)
        except (ValueError, TypeError) as err:
            raise UsageError(f"{args.results}: {err}") from None
    except UsageError as err:
        text = str(err)
        raise UsageError(text if text.startswith(PROG) else f"{PROG}: {text}") from None
    if args.json:
        print(json.dumps(_as_json(matches, kwargs, args.tol), indent=2))
    else:
        from ..verify.diagnosis import format_diagnosis

        print(format_diagnosis(matches, top=args.top))
    return EXIT_OK if matches[0].matched else EXIT_FAIL
