"""``minikd gradcheck``: every loss's closed-form gradient against central differences."""

from __future__ import annotations

import math
import sys

from .common import EXIT_FAIL, EXIT_OK, nonneg_int, positive_float, print_json

HELP = "check every loss's gradient by finite differences"
DESCRIPTION = ("Run every public minikd loss and library preset through minikd.gradcheck on "
               "random float64 inputs at several temperatures and print a pass/fail table. "
               "Exit status 1 if any check fails.")


def add_arguments(p):
    p.add_argument("--t", "--temperature", nargs="+", type=positive_float, dest="t",
                   default=[0.5, 1.0, 4.0, 20.0], metavar="T",
                   help="temperatures (default: 0.5 1 4 20)")
    p.add_argument("--tol", type=positive_float, default=1e-5,
                   help="largest normwise error accepted (default: 1e-5)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args):
    from ..experiments.report import format_table
    from ..verify import selfcheck

    rows = selfcheck.gradcheck_losses(temperatures=args.t, tol=args.tol, rng=args.seed)
    failed = [r for r in rows if r["status"] != "pass"]
    if args.json:
        for r in rows:  # JSON has no infinity: a non-finite error is null (and a FAIL)
            r["error"] = r["error"] if r["error"] is not None and math.isfinite(r["error"]) \
                else None
        print_json({"tol": args.tol, "rows": rows, "failed": len(failed)})
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
