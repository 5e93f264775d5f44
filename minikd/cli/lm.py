"""``minikd lm``: distil a character-level language model of names (the command's face).

Shaped like the modules of :mod:`minikd.cli` (``HELP``, ``DESCRIPTION``, ``add_arguments``,
``run``): the options go on the subcommand's parser, :func:`run` runs the job and prints a table
(or JSON with ``--json``). Exit status: 0 done, 1 training diverged, 2 bad input (one line on
stderr starting with "minikd lm: ", before any work). No math here: the job is
:func:`minikd.experiments.lm.run_lm`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    first_line,
    nonneg_int,
    positive_float,
    positive_int,
    print_json,
    temperature_float,
    unit_float,
)
from .outputs import check_output_file

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "distil a character-level language model of names: scratch vs forward KL, reverse KL, JSD"
DESCRIPTION = ("Train small character-level language models of the US Census 1990 names (the "
               "previous k characters -> embeddings -> hidden layer -> next character) from "
               "scratch and from a larger teacher's distributions (forward KL, reverse KL, "
               "generalized JSD), at the same budget on each seed, and print test NLL in nats "
               "and bits per character, the paired gain over scratch, and sampled names. The "
               "teacher is shipped (--train-teacher retrains it).")
PROG = "minikd lm"


def add_arguments(parser):
    """The options of ``minikd lm``, with their defaults shown from :class:`LMSetup`."""
    from ..experiments.lm import DIVERGENCES, TUNED_LR, LMSetup
    from ..experiments.lm_teacher import TEACHER
    from ..experiments.parallel import BACKENDS

    d, t = LMSetup(), TEACHER
    parser.set_defaults(command="lm")  # for the messages, also when used outside minikd.cli
    g = parser.add_argument_group("runs")
    g.add_argument("--seeds", type=positive_int, metavar="S",
                   help=f"number of seeds (default: {d.seeds})")
    g.add_argument("--first-seed", type=nonneg_int, metavar="S",
                   help=f"first seed (default: {d.first_seed}; the defaults were chosen on "
                        "validation names with seeds 100 and 101)")
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
    tuned = ", ".join(f"{m} {lr:g}" for m, lr in TUNED_LR.items() if m != "scratch")
    g.add_argument("--lr", type=positive_float,
                   help="Adam learning rate of every distilled student (default: each its own, "
                        f"tuned on validation names: {tuned})")
    g.add_argument("--scratch-lr", type=positive_float, metavar="LR",
                   help=f"Adam learning rate of the scratch student (default: "
                        f"{TUNED_LR['scratch']:g}, tuned on validation names)")
    g.add_argument("--samples", type=nonneg_int, metavar="N", dest="n_samples",
                   help=f"names sampled per model (default: {d.n_samples})")
    g.add_argument("--train-names", type=positive_int, metavar="N",
                   help="train on the first N training names only (a quick run; default: all "
                        "73,528)")
    g = parser.add_argument_group("distillation")
    g.add_argument("--methods", nargs="+", choices=tuple(DIVERGENCES), metavar="DIV",
                   help=f"divergences of the distilled students: {', '.join(DIVERGENCES)} "
                        f"(default: all)")
    g.add_argument("--temperature", "--t", type=temperature_float, metavar="T",
                   help=f"temperature (default: {d.temperature:g})")
    g.add_argument("--alpha", type=unit_float,
                   help=f"weight of the soft term; 1 - alpha weighs the cross-entropy "
                        f"(default: {d.alpha:g})")
    g.add_argument("--beta", type=unit_float,
                   help=f"generalized JSD's beta (default: {d.beta:g})")
    g = parser.add_argument_group("teacher")
    g.add_argument("--teacher", metavar="FILE",
                   help="a teacher saved by --teacher-out (default: the shipped one)")
    g.add_argument("--train-teacher", action="store_true",
                   help=f"train a fresh teacher (k={t.context}, d={t.embed_dim}, "
                        f"h={'-'.join(map(str, t.hidden))}, dropout {t.dropout:g}, "
                        f"{t.epochs} epochs, seed {t.seed}: the shipped teacher's recipe; "
                        f"about 4 minutes)")
    g.add_argument("--teacher-out", metavar="FILE",
                   help="with --train-teacher: save the teacher there (atomically)")
    g.add_argument("--force", action="store_true", help="overwrite an existing --teacher-out")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="the teacher's training progress on stderr")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar on stderr, only the result")
    return parser


_FIELDS = ("seeds", "first_seed", "context", "embed_dim", "hidden", "epochs", "batch_size",
           "lr", "scratch_lr", "n_samples", "train_names", "methods", "temperature", "alpha",
           "beta", "teacher", "train_teacher")


def _check(args):
    """The setup, after every argument and file is checked; UsageError otherwise."""
    from ..experiments.lm import LMSetup

    if args.teacher is not None and args.train_teacher:
        raise UsageError(f"{PROG}: error: give --teacher FILE or --train-teacher, not both")
    if args.teacher_out is not None and not args.train_teacher:
        raise UsageError(f"{PROG}: error: --teacher-out FILE needs --train-teacher")
    check_output_file(args, "teacher_out")
    module = {"dask": "distributed", "ray": "ray"}.get(args.backend)
    if module is not None and importlib.util.find_spec(module) is None:
        raise UsageError(f"{PROG}: error: --backend {args.backend} needs {module} (pip install "
                         f"'minikd[{args.backend}]')")
    if args.teacher is not None and not os.path.isfile(args.teacher):
        raise UsageError(f"{PROG}: error: --teacher: no such file: {args.teacher}")
    values = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    for key in ("hidden", "methods"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        setup = LMSetup(**values).checked()
        if args.teacher is not None:  # a readable CharLM file, or a one-line error now
            from ..nn.char_lm import CharLM

            CharLM.load(args.teacher)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{PROG}: error: {first_line(err)}") from err
    return setup


def run(args):
    """Run ``minikd lm`` with parsed ``args``; returns the exit status."""
    from ..experiments.lm import run_lm
    from ..experiments.lm_report import lm_report

    try:
        setup = _check(args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return EXIT_USAGE
    try:
        result = run_lm(setup, jobs=args.jobs, backend=args.backend, verbose=args.verbose,
                        teacher_out=args.teacher_out,
                        progress=not (args.quiet or args.json))
    except ArithmeticError as err:  # NonFiniteLossError: training diverged, named where
        print(f"{PROG}: training failed: {first_line(err)}", file=sys.stderr)
        return EXIT_FAIL
    if args.teacher_out is not None and args.verbose:
        print(f"teacher saved in {args.teacher_out}", file=sys.stderr)
    if args.json:
        print_json(result)
    else:
        print(lm_report(result))
    return EXIT_OK
