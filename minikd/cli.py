"""The ``minikd`` command line (also ``python -m minikd``).

This module only parses arguments, calls :mod:`minikd.experiments`, and prints tables, JSON or
plots; it holds no math. Bad arguments exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from ._threads import blas_threads
from .experiments.report import ROW_NAMES, distill_report, format_table, omit_report, sweep_report

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument found after parsing; reported on one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (no usage block) and exit status 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


# -- argument types: reject nonsense at parse time --------------------------------------------

def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _unit_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not (0.0 <= v <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return v


def _finite_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _dropout_float(text):
    v = _unit_float(text)
    if v >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def _open_unit_float(text):
    v = _unit_float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return v


def _int_at_least(low):
    """An argparse type: an integer >= ``low``, else a one-line error."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


# -- output helpers ---------------------------------------------------------------------------

def _print_json(obj):
    print(json.dumps(obj, indent=2, allow_nan=False))


def _plot(args, draw, *data):
    """Draw with matplotlib when ``--plot`` was given; a clear message if it is missing."""
    if not getattr(args, "plot", None):
        return EXIT_OK
    from .experiments import plots

    try:
        plots.require_matplotlib()
    except ImportError as err:
        print(f"minikd: cannot draw {args.plot}: {err}", file=sys.stderr)
        return EXIT_FAIL
    draw(*data, path=args.plot)
    if not getattr(args, "quiet", False):
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


# -- commands ---------------------------------------------------------------------------------

def _cmd_temperature(args):
    from .experiments import distill_job as experiments

    table = experiments.temperature_table(args.logits, args.t)
    names = args.names or [f"class {i}" for i in range(len(args.logits))]
    if len(names) != len(args.logits):
        raise UsageError(f"minikd temperature: error: --names has {len(names)} entries for "
                         f"{len(args.logits)} logits")
    if args.json:
        _print_json({"logits": list(args.logits), "names": names,
                     "rows": [{"temperature": t, "probabilities": [float(p) for p in row]}
                              for t, row in zip(args.t, table, strict=True)]})
    else:
        print("softmax(z / T) for z = " + ", ".join(f"{v:g}" for v in args.logits))
        rows = [[f"T = {t:g}"] + [f"{p:.4f}" for p in row]
                for t, row in zip(args.t, table, strict=True)]
        print(format_table(["", *names], rows))
    from .experiments import plots

    return _plot(args, plots.plot_temperature, args.t, table, names)


def _cmd_gradcheck(args):
    from .verify import selfcheck

    rows = selfcheck.gradcheck_losses(temperatures=args.t, tol=args.tol, rng=args.seed)
    failed = [r for r in rows if r["status"] != "pass"]
    if args.json:
        for r in rows:  # JSON has no infinity: a non-finite error is null (and a FAIL)
            r["error"] = r["error"] if r["error"] is not None and math.isfinite(r["error"]) \
                else None
        _print_json({"tol": args.tol, "rows": rows, "failed": len(failed)})
    else:
        table = [[r["loss"], "-" if r["temperature"] is None else f"{r['temperature']:g}",
                  "-" if r["error"] is None else f"{r['error']:.1e}", r["status"]]
                 for r in rows]
        print(format_table(["loss", "T", "normwise error", "result"], table))
        print(f"{len(rows) - len(failed)} passed, {len(failed)} failed "
              f"(central differences in float64, tol {args.tol:g})")
        for r in failed:
            print(r["detail"], file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


def _cmd_distill(args):
    from .experiments import distill_job as experiments
    from .experiments import plots

    setup = _setup_from_args(args)
    with blas_threads(args.threads):
        result = experiments.run_distill(setup, verbose=not args.quiet, save_dir=args.save)
    if args.json:
        _print_json(result)
    else:
        print(distill_report(result))
    if args.save and not args.quiet:
        print(f"models saved in {args.save}", file=sys.stderr)
    curves = {ROW_NAMES[k]: result["curves"][k] for k in ("scratch", "scratch_wd", "distilled")}
    return _plot(args, plots.plot_training_curves, curves)


def _cmd_omit_class(args):
    from .experiments import omit_class

    setup = _setup_from_args(args, omit_class.OmitSetup)
    with blas_threads(args.threads):
        result = omit_class.run_omit_class(setup, verbose=not args.quiet)
    if args.json:
        _print_json(result)
    else:
        print(omit_report(result))
    return EXIT_OK


def _setup_from_args(args, cls=None):
    from .experiments.distill_job import DistillSetup

    cls = cls or DistillSetup
    fields = cls.__dataclass_fields__
    values = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    for k in ("teacher_hidden", "student_hidden"):
        if k in values:
            values[k] = tuple(values[k])
    if values.get("dataset") == "idx" and not values.get("data_dir"):
        raise UsageError(f"minikd {args.command}: error: --dataset idx needs --data-dir FOLDER")
    return cls(**values)


def _cmd_sweep(args):
    from .experiments import plots, sweeps

    setup = _setup_from_args(args)
    with blas_threads(args.threads):
        result = sweeps.run_sweep(setup, temperatures=args.sweep_t,
                                       alphas=args.sweep_alpha, verbose=not args.quiet)
    if args.json:
        _print_json(result)
    else:
        print(sweep_report(result))
    return _plot(args, plots.plot_sweep, result["temperatures"], result["alphas"],
                 100 * np.asarray(result["gain"]))


def _cmd_vectors(args):
    from .verify import vectors

    if args.check:
        doc = vectors.load_vectors(args.check)  # a file that is not one: ValueError, exit 2
        rows = vectors.compare_vectors(doc)
        for r in rows:  # written so that NaN or inf never passes
            ok = r["loss_error"] <= args.tol and r["grad_error"] <= args.tol
            r["result"] = "pass" if ok else "FAIL"
        bad = [r for r in rows if r["result"] == "FAIL"]
        if args.json:
            for r in rows:  # JSON has no infinity: a non-finite error is null (and a FAIL)
                for key in ("loss_error", "grad_error"):
                    r[key] = r[key] if math.isfinite(r[key]) else None
            _print_json({"file": args.check, "tol": args.tol, "rows": rows, "failed": len(bad)})
        else:
            table = [[r["name"], f"{r['loss_error']:.1e}", f"{r['grad_error']:.1e}",
                      r["result"]] for r in rows]
            print(format_table(["case", "loss error", "gradient error", "result"], table))
            print(f"{len(rows) - len(bad)} passed, {len(bad)} failed (tol {args.tol:g}) "
                  f"against {args.check}")
        return EXIT_FAIL if bad else EXIT_OK
    if args.out:
        path = vectors.write_golden_vectors(args.out)
        print(f"wrote {len(vectors.golden_cases())} cases to {path}", file=sys.stderr)
    else:
        _print_json(vectors.golden_vectors())
    return EXIT_OK


def _bench_module():
    """``bench/train_step.py`` of a source checkout, or None after ``pip install .``."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "train_step.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_minikd_bench_train_step", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a broken or foreign file: leave the command out
        return None
    return module


def _cmd_bench(args):
    bench = args.bench_module
    result = bench.run(threads=args.threads, repeats=args.repeats, use_torch=not args.no_torch,
                       dtype=np.dtype(args.dtype).type, block_seconds=args.block_seconds,
                       clock=args.clock)
    print(json.dumps(result, indent=2) if args.json else bench.format_table(result))
    return EXIT_OK


def _add_setup_arguments(p, defaults, omit=False, sweep=False):
    """The options shared by the experiment commands; defaults shown from their setup."""
    d = defaults
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist1d", "digits", "idx"],
                   help=f"built-in MNIST-1D, the shipped UCI digits, or IDX files "
                        f"(default: {d.dataset})")
    g.add_argument("--data-dir", metavar="FOLDER", help="folder of the MNIST/Fashion-MNIST "
                   "IDX files (with --dataset idx)")
    g.add_argument("--n-train", type=_positive_int, metavar="N",
                   help="use only the first N training examples")
    g = p.add_argument_group("models and training")
    g.add_argument("--seeds", type=_positive_int, metavar="S",
                   help=f"number of seeds (default: {d.seeds})")
    g.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                   help="BLAS threads while training (default: 1; these networks are too small "
                        "for more threads to pay, and float32 results depend on the count)")
    g.add_argument("--first-seed", type=_nonneg_int, metavar="S",
                   help=f"first seed (default: {d.first_seed})")
    g.add_argument("--teacher-hidden", type=_positive_int, nargs="+", metavar="H",
                   help=f"teacher hidden widths (default: {' '.join(map(str, d.teacher_hidden))})")
    g.add_argument("--student-hidden", type=_positive_int, nargs="+", metavar="H",
                   help=f"student hidden widths (default: {' '.join(map(str, d.student_hidden))})")
    g.add_argument("--teacher-dropout", type=_dropout_float, metavar="P",
                   help=f"teacher dropout (default: {d.teacher_dropout:g})")
    g.add_argument("--teacher-epochs", type=_positive_int, metavar="E",
                   help=f"teacher epochs (default: {d.teacher_epochs})")
    g.add_argument("--epochs", type=_positive_int, metavar="E",
                   help=f"epochs of every student (default: {d.epochs})")
    g.add_argument("--lr", type=_positive_float, help=f"Adam learning rate (default: {d.lr:g})")
    g.add_argument("--batch-size", type=_positive_int, metavar="B",
                   help=f"mini-batch size (default: {d.batch_size})")
    if omit:
        g.add_argument("--omit", type=_nonneg_int, metavar="CLASS",
                       help=f"the class left out of the transfer set (default: {d.omit})")
        g.add_argument("--val-fraction", type=_open_unit_float, metavar="F",
                       help=f"share of the training data held out to choose the validation "
                            f"shift (default: {d.val_fraction:g})")
        g = p.add_argument_group("distillation")
        g.add_argument("--temperature", "--t", type=_positive_float, metavar="T",
                       help=f"temperature T (default: {d.temperature:g})")
        g.add_argument("--alpha", type=_unit_float,
                       help=f"weight of the soft term in [0, 1] (default: {d.alpha:g})")
        return
    g.add_argument("--weight-decay", type=_nonneg_float, metavar="W",
                   help=f"decoupled (AdamW) weight decay of the regularised scratch student "
                        f"(default: {d.weight_decay:g}, the best of 0.01, 0.03, 0.1, 0.3 for it)")
    g = p.add_argument_group("distillation")
    g.add_argument("--family", choices=["response", "feature", "relation"],
                   help=f"what the student copies besides the soft targets (default: {d.family})")
    if sweep:
        g.add_argument("--t", dest="sweep_t", nargs="+", type=_positive_float, metavar="T",
                       default=[1.0, 2.0, 4.0, 8.0], help="temperatures (default: 1 2 4 8)")
        g.add_argument("--alpha", dest="sweep_alpha", nargs="+", type=_unit_float,
                       metavar="A", default=[0.5, 0.9, 1.0],
                       help="weights of the soft term (default: 0.5 0.9 1)")
    else:
        g.add_argument("--temperature", "--t", type=_positive_float, metavar="T",
                       help=f"temperature T (default: {d.temperature:g})")
        g.add_argument("--alpha", type=_unit_float,
                       help=f"weight of the soft term in [0, 1] (default: {d.alpha:g})")
    g.add_argument("--beta", type=_nonneg_float,
                   help="weight of the feature or relation term (default: the libraries' "
                        "weight for that loss: cosine 1, at 1000, rkd 1 with 25 x distance + "
                        "50 x angle inside, sp 3000, pkt 30000; fitnets 10: the libraries' 100 "
                        "lets the hint swamp the KD term on these small networks)")
    g.add_argument("--feature-loss", choices=["fitnets", "cosine", "at"],
                   help=f"with --family feature: FitNets hint through a learned regressor, "
                        f"cosine or attention transfer (the last two need equal widths) "
                        f"(default: {d.feature_loss})")
    g.add_argument("--relation-loss", choices=["rkd", "sp", "pkt"],
                   help=f"with --family relation: PKT, similarity-preserving, or RKD (slow: "
                        f"its angle term is O(B^3) per batch) (default: {d.relation_loss})")


# -- parser -----------------------------------------------------------------------------------

def build_parser():
    """The argument parser for ``minikd`` and its subcommands."""
    parser = _Parser(
        prog="minikd",
        description="Knowledge distillation from scratch in NumPy: experiments and self-checks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    from .experiments.distill_job import DistillSetup

    defaults = DistillSetup()
    p = sub.add_parser(
        "distill", help="teacher vs scratch student vs distilled student, over seeds",
        description="Train a teacher, a student from scratch (plain and with weight decay) and a "
                    "distilled student on each seed, and print one table: accuracy mean ± std, "
                    "the distilled student's gain and per-seed wins, agreement with the teacher, "
                    "parameters, bytes, inference time, and the DistilBERT-style triple. "
                    "Progress goes to stderr.")
    _add_setup_arguments(p, defaults)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--save", metavar="DIR", help="save every model (.npz) in DIR")
    p.add_argument("--plot", metavar="FILE.png", help="draw test accuracy per epoch")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_distill)

    from .experiments.omit_class import OmitSetup

    defaults = OmitSetup()
    p = sub.add_parser(
        "omit-class", help="Hinton's dark-knowledge experiment: a class never in the transfer set",
        description="Hinton et al. (2015), §3: distil a student on a transfer set with no example "
                    "of one class, then report its accuracy on that class before and after "
                    "shifting the class's output bias (the paper's test-optimised shift, a shift "
                    "chosen on a validation split, and one matching the class prior that looks "
                    "at no label).")
    _add_setup_arguments(p, defaults, omit=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_omit_class)
    defaults = DistillSetup()
    p = sub.add_parser(
        "sweep", help="the distilled student's gain over a temperature x alpha grid",
        description="Train one teacher and the scratch students per seed, then one distilled "
                    "student per (T, alpha), and print the gain over scratch on the grid.")
    _add_setup_arguments(p, defaults, sweep=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the grid as a heat map")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("temperature", help="the softmax of some logits at several temperatures",
                       description="Print softmax(z / T) of the given logits at each "
                                   "temperature T, one row per T (Hinton et al. 2015, §2).")
    p.add_argument("logits", nargs="+", type=_finite_float, metavar="LOGIT",
                   help="the logits z (at least two)")
    p.add_argument("--t", nargs="+", type=_positive_float, default=[1.0, 2.0, 4.0, 20.0],
                   metavar="T", help="temperatures (default: 1 2 4 20)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="a name for each class")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="FILE.png", help="draw probability vs temperature")
    p.add_argument("-q", "--quiet", action="store_true", help="no messages on stderr")
    p.set_defaults(func=_cmd_temperature)

    p = sub.add_parser("gradcheck", help="check every loss's gradient by finite differences",
                       description="Run every public minikd loss through minikd.gradcheck on "
                                   "random float64 inputs at several temperatures and print a "
                                   "pass/fail table. Exit status 1 if any check fails.")
    p.add_argument("--t", nargs="+", type=_positive_float, default=[0.5, 1.0, 4.0, 20.0],
                   metavar="T", help="temperatures (default: 0.5 1 4 20)")
    p.add_argument("--tol", type=_positive_float, default=1e-5,
                   help="largest normwise error accepted (default: 1e-5)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser(
        "vectors", help="write the golden vectors, or check a vectors file against minikd",
        description="Print (or write with --out) the golden vectors: small fixed inputs with "
                    "float64 losses and gradients of every loss, as JSON, for testing any "
                    "implementation. With --check FILE, run minikd on every case of FILE and "
                    "print the errors; exit status 1 if any exceeds --tol.")
    p.add_argument("--out", metavar="FILE.json", help="write the vectors to FILE (atomically)")
    p.add_argument("--check", metavar="FILE.json", help="compare minikd with a vectors file")
    p.add_argument("--tol", type=_positive_float, default=1e-10,
                   help="largest relative loss / normwise gradient error (default: 1e-10)")
    p.add_argument("--json", action="store_true", help="with --check: print JSON")
    p.set_defaults(func=_cmd_vectors)

    bench = _bench_module()
    if bench is not None:
        p = sub.add_parser(
            "bench", help="time the distillation training step (source checkout only)",
            description="Run bench/train_step.py: minikd's KD training step against PyTorch "
                        "eager (when installed) and the BLAS matmul ceiling.")
        p.add_argument("--threads", type=_positive_int, metavar="N",
                       help="BLAS threads (default: as the environment says)")
        p.add_argument("--repeats", type=_positive_int, default=9,
                       help="timed blocks per function (default: 9)")
        p.add_argument("--block-seconds", type=_positive_float, default=bench.BLOCK_SECONDS,
                       metavar="S", help=f"length of a timed block (default: "
                                         f"{bench.BLOCK_SECONDS:g})")
        p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        p.add_argument("--clock", choices=tuple(bench.CLOCKS), default="wall")
        p.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
        p.add_argument("--json", action="store_true", help="print the numbers as JSON")
        p.set_defaults(func=_cmd_bench, bench_module=bench)

    return parser


def _first_line(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def main(argv=None):
    """Entry point of the ``minikd`` command. Returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "temperature" and len(args.logits) < 2:
            raise UsageError("minikd temperature: error: give at least two logits")
        return args.func(args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `minikd distill | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        return EXIT_OK
    except (ValueError, TypeError, OSError) as err:
        # Boundary validation in the library names the parameter; one line, no traceback.
        print(f"minikd: error: {_first_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except ArithmeticError as err:  # training diverged (NonFiniteLossError names where)
        print(f"minikd: training failed: {_first_line(err)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("minikd: interrupted", file=sys.stderr)
        return 130
