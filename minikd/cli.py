"""The ``minikd`` command line (also ``python -m minikd``).

This module only parses arguments, calls :mod:`minikd.experiments`, and prints tables, JSON or
plots; it holds no math. Bad arguments exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

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


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


# -- output helpers ---------------------------------------------------------------------------

def _format_table(headers, rows):
    """Left-aligned first column, right-aligned others, two spaces between columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:],
                                                                      strict=True)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_json(obj):
    print(json.dumps(obj, indent=2, allow_nan=False))


def _progress(args):
    if getattr(args, "quiet", False):
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _plot(args, draw, *data):
    """Draw with matplotlib when ``--plot`` was given; a clear message if it is missing."""
    if not getattr(args, "plot", None):
        return EXIT_OK
    from . import plots

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
    from . import experiments

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
        print(_format_table(["", *names], rows))
    from . import plots

    return _plot(args, plots.plot_temperature, args.t, table, names)


def _cmd_gradcheck(args):
    from . import experiments

    rows = experiments.gradcheck_losses(temperatures=args.t, tol=args.tol, rng=args.seed)
    failed = [r for r in rows if r["status"] == "FAIL"]
    if args.json:
        _print_json({"tol": args.tol, "rows": rows, "failed": len(failed)})
    else:
        table = [[r["loss"], "-" if r["temperature"] is None else f"{r['temperature']:g}",
                  "-" if r["error"] is None else f"{r['error']:.1e}", r["status"]]
                 for r in rows]
        print(_format_table(["loss", "T", "normwise error", "result"], table))
        n_pass = sum(r["status"] == "pass" for r in rows)
        n_skip = sum(r["status"] == "skip" for r in rows)
        print(f"{n_pass} passed, {len(failed)} failed, {n_skip} skipped "
              f"(central differences in float64, tol {args.tol:g})")
        for r in rows:
            if r["status"] != "pass" and r["detail"]:
                print(r["detail"], file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


# -- parser -----------------------------------------------------------------------------------

def build_parser():
    """The argument parser for ``minikd`` and its subcommands."""
    parser = _Parser(
        prog="minikd",
        description="Knowledge distillation from scratch in NumPy: experiments and self-checks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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
    return parser


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
    except (ValueError, TypeError, FileNotFoundError) as err:
        # Boundary validation in the library names the parameter; one line, no traceback.
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"minikd: error: {first}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("minikd: interrupted", file=sys.stderr)
        return 130
