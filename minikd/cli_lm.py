"""``minikd lm``: distil a character-level language model of names (the command's face).

Two functions for the command-line package: :func:`add_arguments` puts the options on the
subcommand's parser, :func:`run` runs the job and prints a table (or JSON with ``--json``).
Exit status: 0 done, 1 training diverged, 2 bad input (one line on stderr, before any work).
No math here: the job is :func:`minikd.experiments.lm.run_lm`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROG = "minikd lm"


def _number(low, high=math.inf, *, integer=False, open_low=False):
    """An argparse type: a number in [low, high] (or (low, high]), else a one-line error."""
    what = "an integer" if integer else "a number"
    rng = f"{'(' if open_low else '['}{low:g}, {high:g}]"

    def parse(text):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or v > high or v < low or (open_low and v == low):
            raise argparse.ArgumentTypeError(f"expected {what} in {rng}, got {text!r}")
        return v
    return parse


def add_arguments(parser):
    """The options of ``minikd lm``, with their defaults shown from :class:`LMSetup`."""
    from .experiments.lm import DIVERGENCES, TUNED_LR, LMSetup
    from .experiments.lm_teacher import TEACHER
    from .experiments.parallel import BACKENDS

    d, t = LMSetup(), TEACHER
    positive_int, count = _number(1, integer=True), _number(0, integer=True)
    g = parser.add_argument_group("runs")
    g.add_argument("--seeds", type=positive_int, metavar="S",
                   help=f"number of seeds (default: {d.seeds})")
    g.add_argument("--first-seed", type=count, metavar="S",
                   help=f"first seed (default: {d.first_seed}; the defaults were chosen on "
                        "validation names with seeds 100 and up)")
    g.add_argument("--jobs", type=positive_int, metavar="N",
                   help="worker processes (default: the cores); the numbers do not depend on it")
    g.add_argument("--backend", choices=BACKENDS, default="loky",
                   help="where the runs go: local processes (loky, the default), or a dask or "
                        "ray cluster (pip install 'minikd[dask]' / 'minikd[ray]')")
    g = parser.add_argument_group("students")
    g.add_argument("--context", type=positive_int, metavar="K",
                   help=f"characters of context (default: {d.context})")
    g.add_argument("--embed-dim", type=positive_int, metavar="D",
                   help=f"embedding width (default: {d.embed_dim})")
    g.add_argument("--hidden", type=positive_int, nargs="+", metavar="H",
                   help=f"hidden widths (default: {' '.join(map(str, d.hidden))})")
    g.add_argument("--epochs", type=positive_int, metavar="E",
                   help=f"passes over the training characters, the same for every student "
                        f"(default: {d.epochs})")
    g.add_argument("--batch-size", type=positive_int, metavar="B",
                   help=f"mini-batch size (default: {d.batch_size})")
    tuned = ", ".join(f"{m} {lr:g}" for m, lr in TUNED_LR.items())
    g.add_argument("--lr", type=_number(0, open_low=True),
                   help="Adam learning rate of every distilled student (default: each its own, "
                        f"tuned on validation names: {tuned})")
    g.add_argument("--scratch-lr", type=_number(0, open_low=True), metavar="LR",
                   help=f"Adam learning rate of the scratch student (default: "
                        f"{TUNED_LR['scratch']:g}, tuned on validation names)")
    g.add_argument("--samples", type=count, metavar="N", dest="n_samples",
                   help=f"names sampled per model (default: {d.n_samples})")
    g.add_argument("--train-names", type=positive_int, metavar="N",
                   help="train on the first N training names only (a quick run; default: all "
                        "73,528)")
    g = parser.add_argument_group("distillation")
    g.add_argument("--methods", nargs="+", choices=tuple(DIVERGENCES), metavar="DIV",
                   help=f"divergences of the distilled students: {', '.join(DIVERGENCES)} "
                        f"(default: all)")
    g.add_argument("--temperature", "--t", type=_number(1e-6, 1e6), metavar="T",
                   help=f"temperature (default: {d.temperature:g})")
    g.add_argument("--alpha", type=_number(0, 1),
                   help=f"weight of the soft term; 1 - alpha weighs the cross-entropy "
                        f"(default: {d.alpha:g})")
    g.add_argument("--beta", type=_number(0, 1),
                   help=f"generalized JSD's beta (default: {d.beta:g})")
    g = parser.add_argument_group("teacher")
    g.add_argument("--teacher", metavar="FILE",
                   help="a teacher saved by --teacher-out (default: the shipped one)")
    g.add_argument("--train-teacher", action="store_true",
                   help=f"train a fresh teacher (k={t.context}, d={t.embed_dim}, "
                        f"h={'-'.join(map(str, t.hidden))}, dropout {t.dropout:g}, "
                        f"{t.epochs} epochs, seed {t.seed}: the shipped teacher's recipe; "
                        f"several minutes)")
    g.add_argument("--teacher-out", metavar="FILE",
                   help="with --train-teacher: save the teacher there (atomically)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="the teacher's training progress on stderr")
    return parser


_FIELDS = ("seeds", "first_seed", "context", "embed_dim", "hidden", "epochs", "batch_size",
           "lr", "scratch_lr", "n_samples", "train_names", "methods", "temperature", "alpha",
           "beta", "teacher", "train_teacher")


def _usage(message):
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args):
    """Run ``minikd lm`` with parsed ``args``; returns the exit status."""
    from .experiments.lm import LMSetup, run_lm
    from .experiments.lm_report import lm_report
    values = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    for key in ("hidden", "methods"):
        if key in values:
            values[key] = tuple(values[key])
    if args.teacher is not None and args.train_teacher:
        return _usage("give --teacher FILE or --train-teacher, not both")
    if args.teacher_out is not None and not args.train_teacher:
        return _usage("--teacher-out FILE needs --train-teacher")
    module = {"dask": "distributed", "ray": "ray"}.get(args.backend)
    if module is not None and importlib.util.find_spec(module) is None:
        return _usage(f"--backend {args.backend} needs {module} (pip install "
                      f"'minikd[{args.backend}]')")
    if args.teacher is not None and not os.path.isfile(args.teacher):
        return _usage(f"--teacher: no such file: {args.teacher}")
    if args.teacher_out is not None and not os.path.isdir(
            os.path.dirname(os.path.abspath(args.teacher_out))):
        return _usage(f"--teacher-out: no such folder for {args.teacher_out}")
    try:
        setup = LMSetup(**values).checked()
        if args.teacher is not None:  # a readable CharLM file, or a one-line error now
            from .nn.char_lm import CharLM

            CharLM.load(args.teacher)
    except (ValueError, TypeError) as err:
        return _usage(str(err).splitlines()[0])
    try:
        result = run_lm(setup, jobs=args.jobs, backend=args.backend, verbose=args.verbose,
                        teacher_out=args.teacher_out)
    except ArithmeticError as err:  # NonFiniteLossError: training diverged, named where
        print(f"{PROG}: training failed: {str(err).splitlines()[0]}", file=sys.stderr)
        return EXIT_FAIL
    if args.teacher_out is not None and args.verbose:
        print(f"teacher saved in {args.teacher_out}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(lm_report(result))
    return EXIT_OK
